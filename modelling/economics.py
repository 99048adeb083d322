"""A campaign's economics per arm, and the one formula that turns predictions into profit.

Per customer ``i`` and treatment arm ``k`` (models_dl.policy has the rule)

    profit_ik = value * uplift_ik - cost_k - conversion_cost_k * treated_ik
                - sum_g price_g * harm_ikg

Targeting lists, their held-out evaluation, the targeting rules stored with
a model version and a single customer's explanation all take their numbers
from :func:`economics_build` and their profit from :func:`arm_profit`, so a
customer is explained with the arm a list would give them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from django.core.exceptions import ValidationError

from core.bounds import AMOUNT_MAX, BUDGET_MAX, number_in_range, range_text
from marketing.models import Campaign
from marketing.services import campaign_harm_clean
from modelling.models import ModelVersion
from models_dl.policy import profit_table, targeting_select


@dataclass(frozen=True)
class Economics:
    """What targeting_select is given, per arm (K) and per guardrail metric (G)."""

    arm_names: list[str]  # K treatment arms, in the model's column order
    value: float
    cost: np.ndarray  # (K,)
    conversion_cost: np.ndarray  # (K,)
    guardrails: list[str]  # G metric names
    guard_sign: np.ndarray  # (G,) +1 when a rise is harm, -1 when a fall is
    guard_price: np.ndarray  # (G,)
    guard_cap: np.ndarray  # (G,) inf = none
    budget: float | None
    max_contacts: int | None
    arm_capacity: np.ndarray | None  # (K,) inf = none
    default_cost: float = 0.0  # per contact, for arms without their own


def select(econ: Economics, uplift: np.ndarray, treated: np.ndarray, guard: np.ndarray,
           *, share: float = 1.0):
    """targeting_select with ``econ``'s economics and its limits times ``share``."""
    return targeting_select(
        uplift, value_per_conversion=econ.value, cost_per_contact=econ.cost,
        conversion_cost=econ.conversion_cost, treated_outcome=treated,
        guardrail_uplift=guard if econ.guardrails else None,
        guardrail_price=econ.guard_price if econ.guardrails else None,
        guardrail_cap=econ.guard_cap * share if econ.guardrails else None,
        budget=None if econ.budget is None else econ.budget * share,
        max_contacts=None if econ.max_contacts is None else int(econ.max_contacts * share),
        arm_capacity=None if econ.arm_capacity is None else np.floor(econ.arm_capacity * share))


def arm_profit(econ: Economics, uplift: np.ndarray, treated: np.ndarray,
               guard: np.ndarray) -> np.ndarray:
    """``(n, K)`` expected profit per customer and arm: the table :func:`select` ranks."""
    return profit_table(
        uplift, value_per_conversion=econ.value, cost_per_contact=econ.cost,
        conversion_cost=econ.conversion_cost, treated_outcome=treated,
        guardrail_uplift=guard if econ.guardrails else None,
        guardrail_price=econ.guard_price if econ.guardrails else None)


def predicted_arrays(econ: Economics, outcomes: np.ndarray,
                     guard_outcomes: Mapping[str, np.ndarray]):
    """Per-arm uplift ``(n, K)``, treated outcome ``(n, K)`` and harm ``(n, K, G)``.

    From the uplift model's per-arm outcomes ``(n, K + 1)`` (control first)
    and each guardrail model's; harm is the guardrail effect signed so that
    a rise is harm (a fall of a metric where higher is better).
    """
    outcomes = np.asarray(outcomes, dtype=np.float64)
    n = outcomes.shape[0]
    uplift = outcomes[:, 1:] - outcomes[:, [0]]
    treated = np.clip(outcomes[:, 1:], 0.0, None)
    guard = np.zeros((n, len(econ.arm_names), len(econ.guardrails)))
    for j, g in enumerate(econ.guardrails):
        mu = np.asarray(guard_outcomes[g], dtype=np.float64).reshape(n, -1)
        guard[:, :, j] = econ.guard_sign[j] * (mu[:, 1:] - mu[:, [0]])
    return uplift, treated, guard


def economics_build(*, campaign: Campaign, version: ModelVersion, budget=None,
                    max_contacts=None, cost_per_contact=None, value_per_conversion=None,
                    arm_capacity=None, harm_prices=None, harm_caps=None, cost_by_arm=None,
                    conversion_cost_by_arm=None) -> Economics:
    """The economics of ``version``'s arms: the campaign's, each override given replacing it.

    ``cost_k``: ``cost_by_arm[k]``, else the arm's cost per contact, else
    ``cost_per_contact``, else the campaign's; ``conversion_cost_k``:
    ``conversion_cost_by_arm[k]``, else the arm's cost per conversion, else 0;
    harm prices and caps per guardrail metric by its event kind.
    """
    arm_names = list(version.metrics.get("arm_names", []))[1:]
    if not arm_names:
        raise ValidationError({"model_version": "the version records no arm names"})
    cost = float(campaign.cost_per_contact if cost_per_contact is None else cost_per_contact)
    value = float(campaign.value_per_conversion if value_per_conversion is None
                  else value_per_conversion)
    if budget is None and campaign.budget is not None:
        budget = float(campaign.budget)
    # Bounds: core.bounds (a budget of 1e308 over a cost of 1e-308 overflowed the policy).
    for name, number, high in (("budget", budget, BUDGET_MAX), ("cost_per_contact", cost,
                               AMOUNT_MAX), ("value_per_conversion", value, AMOUNT_MAX)):
        if number is not None and number_in_range(number, 0.0, high) is None:
            raise ValidationError({name: f"must be {range_text(0.0, high)}"})
    if max_contacts is not None and max_contacts < 0:
        raise ValidationError({"max_contacts": "must be non-negative"})
    arms = ({} if version.experiment_id is None
            else {a.name: a for a in version.experiment.arms.all()})
    costs = np.array([cost if getattr(arms.get(n), "cost_per_contact", None) is None
                      else arms[n].cost_per_contact for n in arm_names], dtype=np.float64)
    conversion = np.array([getattr(arms.get(n), "cost_per_conversion", None) or 0.0
                           for n in arm_names], dtype=np.float64)
    for field, given, column in (("cost_per_contact_by_arm", cost_by_arm, costs),
                                 ("cost_per_conversion_by_arm", conversion_cost_by_arm,
                                  conversion)):
        for name, number in (given or {}).items():
            if name not in arm_names:
                raise ValidationError({field: f"unknown arm {name!r}"})
            if number is None:
                continue  # keep the arm's own
            if number_in_range(number, 0.0, AMOUNT_MAX) is None:
                raise ValidationError({field: f"{name}: must be {range_text(0.0, AMOUNT_MAX)}"})
            column[arm_names.index(name)] = float(number)
    capacity = None
    if arm_capacity:
        unknown = set(arm_capacity) - set(arm_names)
        if unknown:
            raise ValidationError({"arm_capacity": f"unknown arm {sorted(unknown)[0]!r}"})
        if any(not isinstance(c, int) or c < 0 for c in arm_capacity.values()):
            raise ValidationError({"arm_capacity": "must be non-negative integers"})
        capacity = np.array([arm_capacity.get(n, np.inf) for n in arm_names], dtype=np.float64)
    prices = campaign_harm_clean("harm_prices", campaign.harm_prices if harm_prices is None
                                 else harm_prices)
    caps = campaign_harm_clean("harm_caps", campaign.harm_caps if harm_caps is None
                               else harm_caps)
    guardrails = {g: e for g, e in version.metrics.get("guardrails", {}).items()
                  if e.get("model")}
    return Economics(
        arm_names=arm_names, value=value, cost=costs, conversion_cost=conversion,
        guardrails=list(guardrails),
        guard_sign=np.array([-1.0 if e["higher_is_better"] else 1.0
                             for e in guardrails.values()]),
        guard_price=np.array([prices.get(e["event_kind"], 0.0) for e in guardrails.values()]),
        guard_cap=np.array([caps.get(e["event_kind"], np.inf) for e in guardrails.values()]),
        budget=budget, max_contacts=max_contacts, arm_capacity=capacity, default_cost=cost)
