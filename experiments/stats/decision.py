"""Plain-language decision: ship an arm, stop, or keep running.

The rules run in this order; the first that settles the matter wins, and
every rule that fired leaves a sentence in ``reasons``:

1. **Sample ratio mismatch** (``srm.mismatch``) -> ``stop``. The arm sizes
   do not match the configured weights, so assignment or logging is broken
   and no effect estimate can be trusted. Investigate before anything else.
2. **Too few customers**: any arm below ``min_sample_size_per_arm`` ->
   ``keep_running``. The normal approximations behind every test need a few
   hundred customers.
3. **Guardrails**: an arm that significantly harms a guardrail metric
   (``p < alpha`` and the effect in the bad direction for that metric) is
   disqualified. If every treatment arm is disqualified -> ``stop``.
   Guardrails are read at every look even for a fixed-horizon design: an
   early false alarm costs time, a missed harm costs customers.
4. **Fixed horizon not reached**: a fixed-horizon design (``sequential=False``)
   with some arm below its entry in ``required_sample_sizes`` ->
   ``keep_running``; reading a fixed-horizon p-value early is peeking and
   inflates false positives. (A sequential design reads always-valid
   p-values and may stop at any look.)
5. **Winner** -> ``ship``: among arms still eligible, those significantly
   better than control on at least one primary metric and significantly
   worse on none; the one with the largest improvement on the first primary
   metric is named.
6. **Every eligible arm loses**: each is significantly worse than control on
   some primary metric -> ``stop``.
7. **Planned sample reached without a winner** -> ``stop`` and keep control:
   the experiment had its planned power for the minimum detectable effect.
8. Otherwise -> ``keep_running`` (not enough evidence or power yet).

"Significant" uses the p-value in :class:`MetricEvidence`, which the caller
has already corrected for multiplicity (Holm over primary metrics x arms by
default) and, for a sequential design, made always-valid.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

import numpy as np

from experiments.stats.srm import SrmResult

MetricRole = Literal["primary", "secondary", "guardrail"]


class DecisionAction(StrEnum):
    SHIP = "ship"
    STOP = "stop"
    KEEP_RUNNING = "keep_running"


@dataclass(frozen=True)
class MetricEvidence:
    """What the decision reads about one metric for one treatment arm."""

    metric: str
    arm: str
    role: MetricRole
    increase_is_good: bool
    effect: float
    relative_effect: float
    p_value: float

    @property
    def improvement(self) -> float:
        """The effect signed so that positive means "treatment is better"."""
        return self.effect if self.increase_is_good else -self.effect

    def is_significant(self, alpha: float) -> bool:
        return bool(np.isfinite(self.p_value) and self.p_value < alpha)

    def is_better(self, alpha: float) -> bool:
        return self.is_significant(alpha) and self.improvement > 0

    def is_worse(self, alpha: float) -> bool:
        return self.is_significant(alpha) and self.improvement < 0


@dataclass(frozen=True)
class Decision:
    action: DecisionAction
    arm: str | None = None
    reasons: list[str] = field(default_factory=list)


def _percent(value: float) -> str:
    return "n/a" if not np.isfinite(value) else f"{100.0 * value:+.2f}%"


def decide(
    *,
    control: str,
    treatments: Sequence[str],
    evidence: Sequence[MetricEvidence],
    sample_sizes: Mapping[str, int],
    alpha: float = 0.05,
    srm: SrmResult | None = None,
    required_sample_sizes: Mapping[str, float] | None = None,
    min_sample_size_per_arm: int = 100,
    sequential: bool = True,
) -> Decision:
    """Apply the rules of the module docstring, in order."""
    if not treatments:
        raise ValueError("need at least one treatment arm")
    primary_metrics = list(dict.fromkeys(e.metric for e in evidence if e.role == "primary"))
    if not primary_metrics:
        raise ValueError("the decision needs at least one primary metric")
    reasons: list[str] = []

    # 1. Broken assignment invalidates everything downstream.
    if srm is not None and srm.mismatch:
        reasons.append(
            f"Sample ratio mismatch (chi-square p = {srm.p_value:.2g} < {srm.threshold}): arm sizes "
            f"{srm.observed} do not match the configured weights. Investigate assignment and "
            "logging before trusting any result."
        )
        return Decision(DecisionAction.STOP, None, reasons)

    # 2. Too small for the normal approximations.
    small = [
        arm for arm in (control, *treatments) if sample_sizes.get(arm, 0) < min_sample_size_per_arm
    ]
    if small:
        reasons.append(
            f"Arms {small} have fewer than {min_sample_size_per_arm} customers; too early to read."
        )
        return Decision(DecisionAction.KEEP_RUNNING, None, reasons)

    # 3. Guardrails disqualify arms.
    eligible = list(treatments)
    for item in evidence:
        if item.role == "guardrail" and item.is_worse(alpha):
            if item.arm in eligible:
                eligible.remove(item.arm)
            reasons.append(
                f"Arm {item.arm!r} significantly harms guardrail {item.metric!r} "
                f"({_percent(item.relative_effect)} vs control, p = {item.p_value:.3g}); "
                "it cannot ship."
            )
    if not eligible:
        reasons.append("Every treatment arm harms a guardrail metric: stop the experiment.")
        return Decision(DecisionAction.STOP, None, reasons)

    all_arms = (control, *treatments)
    progress = _progress(all_arms, sample_sizes, required_sample_sizes)
    reached = required_sample_sizes is not None and all(
        sample_sizes.get(arm, 0) >= required_sample_sizes.get(arm, np.inf) for arm in all_arms
    )

    # 4. A fixed-horizon p-value is only valid at the horizon.
    if not sequential and required_sample_sizes is not None and not reached:
        reasons.append(
            f"Fixed-horizon design: {progress}. Reading the result before the planned sample "
            "inflates the false-positive rate."
        )
        return Decision(DecisionAction.KEEP_RUNNING, None, reasons)
    if not sequential and required_sample_sizes is None:
        reasons.append(
            "Fixed-horizon design without a planned sample size: this reading is a peek and its "
            "p-values overstate the evidence."
        )

    primary = [e for e in evidence if e.role == "primary" and e.arm in eligible]
    first_primary = primary_metrics[0]

    # 5. Winners: better on some primary metric, worse on none.
    winners = [
        arm
        for arm in eligible
        if any(e.arm == arm and e.is_better(alpha) for e in primary)
        and not any(e.arm == arm and e.is_worse(alpha) for e in primary)
    ]
    if winners:

        def first_primary_improvement(arm: str) -> float:
            matches = [e.improvement for e in primary if e.arm == arm and e.metric == first_primary]
            return matches[0] if matches and np.isfinite(matches[0]) else -np.inf

        best = max(winners, key=first_primary_improvement)
        for e in primary:
            if e.arm == best and e.is_better(alpha):
                reasons.append(
                    f"Arm {best!r} improves primary metric {e.metric!r} by "
                    f"{_percent(e.relative_effect)} vs control (adjusted p = {e.p_value:.3g} < {alpha})."
                )
        if len(winners) > 1:
            reasons.append(
                f"Arms {winners} all beat control; {best!r} has the largest gain on {first_primary!r}."
            )
        return Decision(DecisionAction.SHIP, best, reasons)

    # 6. Every remaining arm is worse on a primary metric.
    losers = [arm for arm in eligible if any(e.arm == arm and e.is_worse(alpha) for e in primary)]
    if losers and len(losers) == len(eligible):
        for e in primary:
            if e.is_worse(alpha):
                reasons.append(
                    f"Arm {e.arm!r} is significantly worse on primary metric {e.metric!r} "
                    f"({_percent(e.relative_effect)} vs control, adjusted p = {e.p_value:.3g})."
                )
        reasons.append("No arm beats control: stop and keep control.")
        return Decision(DecisionAction.STOP, None, reasons)

    # 7. Enough customers for the planned power and still nothing.
    if reached:
        reasons.append(
            f"Every arm reached its planned sample ({progress}) without a significant "
            "improvement on the primary metric: stop and keep control."
        )
        return Decision(DecisionAction.STOP, None, reasons)

    # 8. Not yet.
    if required_sample_sizes is None:
        reasons.append(
            "No significant difference on the primary metric yet, and no planned sample size or "
            "minimum detectable effect to say when to give up: keep running."
        )
    else:
        reasons.append(
            f"No significant difference on the primary metric yet ({progress}): keep running."
        )
    return Decision(DecisionAction.KEEP_RUNNING, None, reasons)


def _progress(
    arms: Sequence[str], sample_sizes: Mapping[str, int], required: Mapping[str, float] | None
) -> str:
    """E.g. ``"control 4,000 of 10,000 planned customers, B 3,900 of 10,000"``."""
    if required is None:
        return ", ".join(f"{arm} {sample_sizes.get(arm, 0):,}" for arm in arms) + " customers"
    parts = [
        f"{arm} {sample_sizes.get(arm, 0):,} of {int(np.ceil(required[arm])):,}"
        for arm in arms
        if arm in required
    ]
    return ", ".join(parts) + " planned customers"
