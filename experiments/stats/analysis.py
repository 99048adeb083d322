"""One call that analyses a whole experiment from per-arm sufficient statistics.

Entry points:

* :func:`analyse_experiment` -- every metric, every treatment arm against
  control, optional segments, SRM, multiple-testing correction and the
  decision. Returns :class:`ExperimentAnalysis`; ``.to_dict()`` gives plain
  JSON.
* :func:`analyse_metric` -- one metric, all arms, without the decision.

What is computed for each (metric, treatment arm):

* ``unadjusted``: Welch comparison of the plain arm estimates (``frequentist``).
* ``cuped``: the same on CUPED-adjusted estimates when every arm has
  pre-period sums and the metric is not a ratio (``cuped``). When present,
  this is the estimate the sequential test, the Bayesian view, the power
  figures and the decision use (``estimate_used = "cuped"``).
* ``sequential``: asymptotic confidence sequence and always-valid p-value
  (``sequential``), with ``rho`` tuned to the planned number of customers in
  the pair of arms.
* ``bayesian``: Beta-Binomial Monte Carlo for an unadjusted proportion,
  otherwise the normal approximation (``bayesian``).
* ``power``: the minimum detectable effect at the traffic so far and, when
  the metric names a relative MDE, the customers needed per arm (``power``).
* ``p_value``: the p-value the decision reads -- the always-valid one for a
  sequential design, the fixed-horizon one otherwise -- and
  ``p_value_adjusted`` after correction over its family:

  - primary metrics x treatment arms: ``design.correction`` (Holm by default);
  - secondary metrics x treatment arms: ``design.correction``;
  - guardrails: not corrected, so that harm is flagged as readily as possible
    (a false alarm costs a closer look, a missed harm costs customers);
  - segments: all segment x metric x arm tests together with
    ``design.segment_correction`` (Benjamini-Hochberg by default), as
    segment cuts are exploratory.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from experiments.stats.arm_estimates import METRIC_KINDS, ArmEstimate, MetricKind, arm_estimate
from experiments.stats.bayesian import (
    DEFAULT_DRAWS,
    BayesianEffect,
    beta_binomial_posterior,
    beta_posterior_draws,
    chance_to_be_best,
    normal_posterior,
    normal_posterior_draws,
)
from experiments.stats.cuped import (
    CupedEffect,
    cuped_compare,
    cuped_estimate,
    pooled_covariate_mean,
    pooled_theta,
)
from experiments.stats.decision import Decision, MetricEvidence, MetricRole, decide
from experiments.stats.frequentist import EffectEstimate, compare_arms
from experiments.stats.multiple_testing import CorrectionMethod, adjust_p_values
from experiments.stats.power import minimum_detectable_effect, sample_size_per_arm
from experiments.stats.sequential import SequentialEffect, confidence_sequence, optimal_rho
from experiments.stats.serialisation import to_jsonable
from experiments.stats.srm import SRM_P_VALUE_THRESHOLD, SrmResult, srm_check
from experiments.stats.sufficient import ArmStatistics, RatioArmStatistics

Statistics = ArmStatistics | RatioArmStatistics
METRIC_ROLES: tuple[MetricRole, ...] = ("primary", "secondary", "guardrail")

# Only tunes where the confidence sequence is tightest (never its validity)
# when a design names no planned sample: 10,000 customers per arm of an A/B.
DEFAULT_PLANNED_SAMPLE_SIZE = 20_000


@dataclass(frozen=True)
class MetricSpec:
    """A metric as the experiment defines it.

    ``minimum_detectable_effect`` is relative to the control mean
    (0.05 = a 5% lift), the way campaign managers state it.
    """

    name: str
    kind: MetricKind
    role: MetricRole = "primary"
    increase_is_good: bool = True
    minimum_detectable_effect: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in METRIC_KINDS:
            raise ValueError(f"kind must be one of {METRIC_KINDS}, got {self.kind!r}")
        if self.role not in METRIC_ROLES:
            raise ValueError(f"role must be one of {METRIC_ROLES}, got {self.role!r}")
        if self.minimum_detectable_effect is not None and not self.minimum_detectable_effect > 0:
            raise ValueError("minimum_detectable_effect must be > 0 (a relative lift)")


@dataclass(frozen=True)
class ExperimentDesign:
    """The settings an analysis needs; ``weights`` maps every arm (control included) to its weight.

    ``planned_sample_size`` is the total number of customers the experiment
    plans to assign across all arms; each arm's share follows the weights.
    """

    control: str
    weights: Mapping[str, float]
    alpha: float = 0.05
    power: float = 0.8
    sequential: bool = True
    planned_sample_size: int | None = None
    correction: CorrectionMethod = "holm"
    segment_correction: CorrectionMethod = "bh"
    min_sample_size_per_arm: int = 100
    srm_threshold: float = SRM_P_VALUE_THRESHOLD
    credible_level: float = 0.95
    posterior_draws: int = DEFAULT_DRAWS
    # Breakdown cells are many and read coarsely: 20,000 draws keep the Monte
    # Carlo error of a chance-to-beat below 0.004 at a fifth of the cost.
    segment_posterior_draws: int = 20_000
    seed: int = 0

    def __post_init__(self) -> None:
        # Copy (the design is frozen) and accept Decimal or int weights from a model field.
        object.__setattr__(self, "weights", {str(arm): float(w) for arm, w in self.weights.items()})
        if self.control not in self.weights:
            raise ValueError(f"control arm {self.control!r} has no weight")
        if len(self.weights) < 2:
            raise ValueError("an experiment needs a control and at least one treatment arm")
        if any(not (weight > 0 and np.isfinite(weight)) for weight in self.weights.values()):
            raise ValueError("arm weights must be finite and > 0")
        if not 0.0 < self.alpha < 1.0:
            raise ValueError("alpha must lie in (0, 1)")
        if not self.alpha < self.power < 1.0:
            raise ValueError("power must lie in (alpha, 1)")
        for name in ("correction", "segment_correction"):
            if getattr(self, name) not in ("holm", "bh"):
                raise ValueError(f"{name} must be 'holm' or 'bh'")
        if self.planned_sample_size is not None and not self.planned_sample_size > 0:
            raise ValueError("planned_sample_size must be > 0")

    @property
    def arms(self) -> tuple[str, ...]:
        return tuple(self.weights)

    @property
    def treatments(self) -> tuple[str, ...]:
        return tuple(arm for arm in self.weights if arm != self.control)

    def planned_sample_sizes(self) -> dict[str, float] | None:
        """Each arm's share of ``planned_sample_size``, or None without a plan."""
        if self.planned_sample_size is None:
            return None
        total_weight = sum(self.weights.values())
        return {arm: self.planned_sample_size * w / total_weight for arm, w in self.weights.items()}

    def sequential_rho(self, treatment: str) -> float:
        """``rho`` tight at the planned customers of control + ``treatment`` (see ``sequential``)."""
        total = self.planned_sample_size or DEFAULT_PLANNED_SAMPLE_SIZE
        share = (self.weights[self.control] + self.weights[treatment]) / sum(self.weights.values())
        return optimal_rho(total * share, self.alpha)


@dataclass(frozen=True)
class ArmSummary:
    """One arm of one metric: its estimate (CUPED-adjusted mean too, when computed)."""

    arm: str
    n: int
    mean: float
    variance: float
    standard_error: float
    adjusted_mean: float | None = None
    adjusted_standard_error: float | None = None


@dataclass(frozen=True)
class PowerSummary:
    """Fixed-horizon power figures for one treatment arm against control."""

    variance: float
    current_mde_absolute: float | None
    current_mde_relative: float | None
    target_mde_relative: float | None = None
    required_sample_size_control: int | None = None
    required_sample_size_treatment: int | None = None


@dataclass(frozen=True)
class ArmComparison:
    """A treatment arm against control on one metric."""

    arm: str
    estimate_used: Literal["cuped", "unadjusted"]
    unadjusted: EffectEstimate
    cuped: CupedEffect | None
    sequential: SequentialEffect
    bayesian: BayesianEffect
    power: PowerSummary
    p_value: float
    p_value_adjusted: float
    significant: bool
    direction: Literal["better", "worse", "none"]

    @property
    def effect(self) -> EffectEstimate:
        """The estimate the decision uses: CUPED-adjusted when available."""
        return self.cuped.effect if self.cuped is not None else self.unadjusted


@dataclass(frozen=True)
class MetricAnalysis:
    metric: str
    kind: MetricKind
    role: MetricRole
    increase_is_good: bool
    arms: list[ArmSummary]
    comparisons: list[ArmComparison]
    chance_to_be_best: dict[str, float]
    cuped_theta: float | None = None


@dataclass(frozen=True)
class SegmentAnalysis:
    segment: str
    srm: SrmResult
    metrics: list[MetricAnalysis]


@dataclass(frozen=True)
class ExperimentAnalysis:
    """Everything :func:`analyse_experiment` found; ``to_dict()`` for storage."""

    inference: Literal["sequential", "fixed_horizon"]
    alpha: float
    sample_sizes: dict[str, int]
    srm: SrmResult
    metrics: list[MetricAnalysis]
    decision: Decision
    segments: list[SegmentAnalysis] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return to_jsonable(self)


def _finite_or_none(value: Any) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None


def _power_summary(
    design: ExperimentDesign,
    metric: MetricSpec,
    treatment: str,
    control_estimate: ArmEstimate,
    treatment_estimate: ArmEstimate,
) -> PowerSummary:
    variance = float(control_estimate.variance)
    baseline = abs(float(control_estimate.mean))
    if not (np.isfinite(variance) and variance > 0):
        return PowerSummary(
            variance=variance,
            current_mde_absolute=None,
            current_mde_relative=None,
            target_mde_relative=metric.minimum_detectable_effect,
        )
    current = minimum_detectable_effect(
        float(control_estimate.n),
        float(treatment_estimate.n),
        variance,
        variance,
        design.alpha,
        design.power,
    )
    relative = current / baseline if baseline > 0 else float("nan")
    required_control = required_treatment = None
    if metric.minimum_detectable_effect is not None and baseline > 0:
        ratio = design.weights[treatment] / design.weights[design.control]
        n_control = sample_size_per_arm(
            metric.minimum_detectable_effect * baseline,
            variance,
            variance,
            design.alpha,
            design.power,
            ratio,
        )
        required_control = int(np.ceil(n_control))
        required_treatment = int(np.ceil(ratio * n_control))
    return PowerSummary(
        variance=variance,
        current_mde_absolute=_finite_or_none(current),
        current_mde_relative=_finite_or_none(relative),
        target_mde_relative=metric.minimum_detectable_effect,
        required_sample_size_control=required_control,
        required_sample_size_treatment=required_treatment,
    )


def _direction(p_value: float, improvement: float, alpha: float) -> tuple[bool, str]:
    significant = bool(np.isfinite(p_value) and p_value < alpha)
    if not significant or improvement == 0 or not np.isfinite(improvement):
        return significant, "none"
    return significant, "better" if improvement > 0 else "worse"


def _with_adjusted(
    comparison: ArmComparison, p_adjusted: float, metric: MetricSpec | MetricAnalysis, alpha: float
) -> ArmComparison:
    effect = float(comparison.effect.absolute_effect)
    improvement = effect if metric.increase_is_good else -effect
    significant, direction = _direction(p_adjusted, improvement, alpha)
    return dataclasses.replace(
        comparison, p_value_adjusted=float(p_adjusted), significant=significant, direction=direction
    )


def analyse_metric(
    design: ExperimentDesign,
    metric: MetricSpec,
    arms: Mapping[str, Statistics],
    previous_p_values: Mapping[str, float] | None = None,
) -> MetricAnalysis:
    """Analyse one metric for every treatment arm against control.

    ``arms`` maps each arm of the design to its sufficient statistics
    (:class:`RatioArmStatistics` for a ratio metric). ``previous_p_values``
    maps treatment arm to the always-valid p-value of the previous look, so
    that it stays a running minimum. ``p_value_adjusted`` is corrected over
    this metric's treatment arms only (guardrails: not corrected);
    :func:`analyse_experiment` re-corrects over the full family.
    """
    if set(arms) != set(design.arms):
        raise ValueError(
            f"metric {metric.name!r}: statistics for {sorted(arms)}, design has {sorted(design.arms)}"
        )
    estimates = {arm: arm_estimate(arms[arm], metric.kind) for arm in design.arms}

    # A covariate that never varies (e.g. all zeros because no pre-period
    # data exist) adjusts nothing; treat it as absent so proportions keep
    # their Beta-Binomial view.
    with_covariate = (
        metric.kind != "ratio"
        and all(isinstance(s, ArmStatistics) and s.has_covariate for s in arms.values())
        and sum(float(s.centred_xx) for s in arms.values()) > 0
    )
    theta = covariate_mean = None
    adjusted: dict[str, ArmEstimate] = {}
    if with_covariate:
        all_stats = [arms[arm] for arm in design.arms]
        theta = float(pooled_theta(all_stats))
        covariate_mean = float(pooled_covariate_mean(all_stats))
        adjusted = {arm: cuped_estimate(arms[arm], theta, covariate_mean) for arm in design.arms}
    used = adjusted or estimates

    control = design.control
    comparisons = []
    for arm in design.treatments:
        unadjusted = compare_arms(estimates[control], estimates[arm], design.alpha)
        cuped = (
            cuped_compare(arms[control], arms[arm], theta, covariate_mean, design.alpha)
            if with_covariate
            else None
        )
        previous = None if previous_p_values is None else previous_p_values.get(arm)
        sequential = confidence_sequence(
            used[control], used[arm], design.sequential_rho(arm), design.alpha, previous
        )
        if metric.kind == "proportion" and not with_covariate:
            bayesian = beta_binomial_posterior(
                arms[control],
                arms[arm],
                metric.increase_is_good,
                design.credible_level,
                draws=design.posterior_draws,
                seed=design.seed,
            )
        else:
            bayesian = normal_posterior(
                used[control], used[arm], metric.increase_is_good, design.credible_level
            )
        effect = cuped.effect if cuped is not None else unadjusted
        p_value = float(sequential.p_value if design.sequential else effect.p_value)
        comparison = ArmComparison(
            arm=arm,
            estimate_used="cuped" if cuped is not None else "unadjusted",
            unadjusted=unadjusted,
            cuped=cuped,
            sequential=sequential,
            bayesian=bayesian,
            power=_power_summary(design, metric, arm, used[control], used[arm]),
            p_value=p_value,
            p_value_adjusted=p_value,
            significant=False,
            direction="none",
        )
        comparisons.append(comparison)

    if metric.role != "guardrail":
        adjusted_p = adjust_p_values([c.p_value for c in comparisons], design.correction)
    else:
        adjusted_p = np.array([c.p_value for c in comparisons])
    comparisons = [
        _with_adjusted(c, p, metric, design.alpha)
        for c, p in zip(comparisons, adjusted_p, strict=True)
    ]

    rng = np.random.default_rng(design.seed)
    if metric.kind == "proportion" and not with_covariate:
        draws = np.column_stack(
            [beta_posterior_draws(arms[arm], design.posterior_draws, rng) for arm in design.arms]
        )
    else:
        draws = normal_posterior_draws(
            [used[arm] for arm in design.arms], design.posterior_draws, rng
        )
    best = chance_to_be_best(draws, metric.increase_is_good) if np.all(np.isfinite(draws)) else None

    summaries = [
        ArmSummary(
            arm=arm,
            n=int(estimates[arm].n),
            mean=float(estimates[arm].mean),
            variance=float(estimates[arm].variance),
            standard_error=float(estimates[arm].standard_error),
            adjusted_mean=float(adjusted[arm].mean) if adjusted else None,
            adjusted_standard_error=float(adjusted[arm].standard_error) if adjusted else None,
        )
        for arm in design.arms
    ]
    return MetricAnalysis(
        metric=metric.name,
        kind=metric.kind,
        role=metric.role,
        increase_is_good=metric.increase_is_good,
        arms=summaries,
        comparisons=comparisons,
        chance_to_be_best=(
            {arm: float(share) for arm, share in zip(design.arms, best, strict=True)}
            if best is not None
            else {}
        ),
        cuped_theta=theta,
    )


def _correct_family(
    analyses: list[MetricAnalysis], indices: list[int], method: CorrectionMethod, alpha: float
) -> None:
    """Re-adjust, in place, the comparisons of ``analyses[indices]`` as one family."""
    cells = [(i, j) for i in indices for j in range(len(analyses[i].comparisons))]
    if not cells:
        return
    adjusted = adjust_p_values([analyses[i].comparisons[j].p_value for i, j in cells], method)
    new_comparisons = {i: list(analyses[i].comparisons) for i in indices}
    for (i, j), p in zip(cells, adjusted, strict=True):
        new_comparisons[i][j] = _with_adjusted(analyses[i].comparisons[j], p, analyses[i], alpha)
    for i in indices:
        analyses[i] = dataclasses.replace(analyses[i], comparisons=new_comparisons[i])


def analyse_experiment(
    design: ExperimentDesign,
    metrics: Sequence[MetricSpec],
    data: Mapping[str, Mapping[str, Statistics]],
    assignment_counts: Mapping[str, int] | None = None,
    segments: Mapping[str, Mapping[str, Mapping[str, Statistics]]] | None = None,
    previous_p_values: Mapping[str, Mapping[str, float]] | None = None,
) -> ExperimentAnalysis:
    """Analyse every metric, correct for multiplicity, check SRM and decide.

    * ``data``: metric name -> arm -> sufficient statistics.
    * ``assignment_counts``: arm -> customers assigned (for SRM and the
      sample-size rules); defaults to ``n`` of the first metric.
    * ``segments``: segment name -> metric name -> arm -> statistics; segment
      results are exploratory and never drive the decision.
    * ``previous_p_values``: metric name -> arm -> always-valid p-value of the
      previous look (see :func:`analyse_metric`).
    """
    if not metrics:
        raise ValueError("need at least one metric")
    names = [m.name for m in metrics]
    if len(set(names)) != len(names):
        raise ValueError("metric names must be unique")
    if not any(m.role == "primary" for m in metrics):
        raise ValueError("need at least one primary metric")
    missing = [name for name in names if name not in data]
    if missing:
        raise ValueError(f"no statistics for metrics {missing}")

    analyses = [
        analyse_metric(design, m, data[m.name], (previous_p_values or {}).get(m.name))
        for m in metrics
    ]
    for role in ("primary", "secondary"):
        family = [i for i, m in enumerate(metrics) if m.role == role]
        _correct_family(analyses, family, design.correction, design.alpha)

    if assignment_counts is None:
        first = data[metrics[0].name]
        assignment_counts = {arm: int(first[arm].n) for arm in design.arms}
    sample_sizes = {arm: int(assignment_counts[arm]) for arm in design.arms}
    srm = srm_check(sample_sizes, design.weights, design.srm_threshold)

    evidence = [
        MetricEvidence(
            metric=analysis.metric,
            arm=c.arm,
            role=analysis.role,
            increase_is_good=analysis.increase_is_good,
            effect=float(c.effect.absolute_effect),
            relative_effect=float(c.effect.relative_effect),
            p_value=c.p_value_adjusted,
        )
        for analysis in analyses
        for c in analysis.comparisons
    ]
    decision = decide(
        control=design.control,
        treatments=design.treatments,
        evidence=evidence,
        sample_sizes=sample_sizes,
        alpha=design.alpha,
        srm=srm,
        required_sample_sizes=_required_sample_sizes(design, metrics, analyses),
        min_sample_size_per_arm=design.min_sample_size_per_arm,
        sequential=design.sequential,
    )
    return ExperimentAnalysis(
        inference="sequential" if design.sequential else "fixed_horizon",
        alpha=design.alpha,
        sample_sizes=sample_sizes,
        srm=srm,
        metrics=analyses,
        decision=decision,
        segments=_analyse_segments(design, metrics, segments or {}),
    )


def _required_sample_sizes(
    design: ExperimentDesign, metrics: Sequence[MetricSpec], analyses: list[MetricAnalysis]
) -> dict[str, float] | None:
    """The design's plan; failing that, the power-based need of the first primary metric with an MDE."""
    planned = design.planned_sample_sizes()
    if planned is not None:
        return planned
    for spec, analysis in zip(metrics, analyses, strict=True):
        if spec.role != "primary" or spec.minimum_detectable_effect is None:
            continue
        needs = [
            (c.arm, c.power.required_sample_size_control, c.power.required_sample_size_treatment)
            for c in analysis.comparisons
        ]
        if any(control is None or treatment is None for _, control, treatment in needs):
            return None  # e.g. a control mean of 0: a relative MDE means nothing
        # Control serves every comparison, so it needs the largest of its requirements.
        required = {
            design.control: float(max(control for _, control, _ in needs if control is not None))
        }
        required.update(
            {arm: float(treatment) for arm, _, treatment in needs if treatment is not None}
        )
        return required
    return None


def _analyse_segments(
    design: ExperimentDesign,
    metrics: Sequence[MetricSpec],
    segments: Mapping[str, Mapping[str, Mapping[str, Statistics]]],
) -> list[SegmentAnalysis]:
    results: list[SegmentAnalysis] = []
    all_analyses: list[MetricAnalysis] = []
    spans = []
    design = dataclasses.replace(design, posterior_draws=design.segment_posterior_draws)
    for segment, segment_data in segments.items():
        specs = [m for m in metrics if m.name in segment_data]
        if not specs:
            continue
        analyses = [analyse_metric(design, m, segment_data[m.name]) for m in specs]
        first = segment_data[specs[0].name]
        srm = srm_check(
            {arm: int(first[arm].n) for arm in design.arms}, design.weights, design.srm_threshold
        )
        spans.append((segment, srm, len(all_analyses), len(analyses)))
        all_analyses.extend(analyses)
    # One family across every segment x metric x arm.
    _correct_family(
        all_analyses, list(range(len(all_analyses))), design.segment_correction, design.alpha
    )
    for segment, srm, start, count in spans:
        results.append(
            SegmentAnalysis(segment=segment, srm=srm, metrics=all_analyses[start : start + count])
        )
    return results
