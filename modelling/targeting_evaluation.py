"""Honest held-out evaluation of a targeting list's policy, beside its baselines.

The model's own "expected profit" is its prediction of itself. This module
asks the experiment instead: on the customers of the version's test split
(ids stored in its artifact by modelling.training, never used to fit it),
with their features as of their assignment and their observed outcomes
(experiments.outcomes.outcome_rows), the policy the list applies is
evaluated with the doubly robust estimator of
models_dl.policy_evaluation: per row

    Gamma_i(a) = mu_i(a) + 1[T_i = a] / e(a) * (y_i - mu_i(a))

with ``mu`` the model's per-arm outcome predictions and ``e`` the arm
weights normalised (assignment is randomised with those weights), and the
estimate is a sum over rows with a normal 95% interval.

Same limits, scaled. The held-out rows are a sample of ``share = rows /
eligible`` of the population the list chose from, so the budget, the
contact cap, per-arm capacities and guardrail caps are multiplied by
``share`` before the policy is applied to them.

Baselines at the same budget on the same rows: ``everyone_<arm>`` (every
row in that arm, cut to the budget and cap in a seeded random order),
``random`` (the policy's arms shuffled across rows: same size and mix),
``response_top`` (the rows most likely to convert, as many as the policy
contacts, in the policy's most used arm, cut to the budget; scored by the
campaign's response champion when there is one, else by the uplift model's
predicted control outcome; ``response_baseline`` says which) and
``no_one``; and ``rules``, when the version stores targeting rules
(modelling.explanations): each row the action of the leaf it falls in,
rows taken by their leaf's mean predicted profit (the rules' own ranking,
ties in id order) until the budget and cap are spent. Profit is money: ``value * conversions - contact costs -
conversion costs``; guardrail harm is estimated separately per metric (DR
with the guardrail model's predictions) and, where the campaign prices it,
``priced_profit = profit - sum_g price_g * harm_g`` is given with the
conservative standard error ``se_profit + sum_g price_g * se_harm_g``
(the standard deviation of a sum is at most the sum of theirs).

Truth (the demo): where the experiment stores each customer's true
conversion uplift (experiments.models.TrueEffect), ``true`` holds each
policy's actual incremental conversions and money profit on these rows
(conversion costs use the model's treated outcome, the truth of which is
not stored).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from experiments.models import Experiment, Metric, TrueEffect
from experiments.outcomes import assignment_cutoffs, outcome_rows
from marketing.features import FeatureSpec, features_build
from marketing.models import Campaign
from modelling.economics import Economics, predicted_arrays, select
from modelling.explanations import rules_apply
from modelling.models import ModelVersion
from modelling.registry import (
    artifact_load,
    champion,
    guardrail_models_load,
    held_out_ids_load,
)
from models_dl.policy_evaluation import (
    Estimate,
    held_out,
    policy_comparison,
    policy_profit_curve,
    policy_value,
    random_like,
    top_by_score,
)

LEVEL = 0.95
CURVE_POINTS = 21


def targeting_evaluate(*, version: ModelVersion, campaign: Campaign, econ: Economics,
                       eligible: int, seed: int = 0) -> dict:
    """The held-out evaluation stored on a TargetingList (see the module docstring)."""
    experiment = version.experiment
    if experiment is None:
        return {"available": False, "reason": "the model version has no experiment"}
    test_ids = held_out_ids_load(version)
    if test_ids is None or test_ids.size < 2:
        return {"available": False, "reason": "the model version stored no held-out split"}
    arms = list(experiment.arms.order_by("-is_control", "id"))
    if [a.name for a in arms[1:]] != econ.arm_names:
        return {"available": False, "reason": "the experiment's arms differ from the model's"}

    X, ids = _features_as_of_assignment(experiment, FeatureSpec.from_json(version.feature_spec),
                                        test_ids)
    n = ids.size
    outcomes = np.asarray(artifact_load(version).predict_outcomes(X)).reshape(n, -1)
    guard_models = guardrail_models_load(version)
    guard_mu = {g: np.asarray(guard_models[g].predict_outcomes(X)).reshape(n, -1)
                for g in econ.guardrails}
    uplift, treated, guard = predicted_arrays(econ, outcomes, guard_mu)

    code = {arm.id: i for i, arm in enumerate(arms)}
    weights = np.array([arm.weight for arm in arms], dtype=np.float64)
    primary = experiment.metrics.get(name=version.target_metric)
    treatment, y = _observed(experiment, primary, ids, code)
    data = held_out(treatment, y, weights, mu=outcomes)

    share = n / max(eligible, n)
    decision = select(econ, uplift, treated, guard, share=share)
    spend = econ.cost[None, :] + econ.conversion_cost[None, :] * treated  # (n, K)
    rng = np.random.default_rng(seed)
    policies = {"uplift_policy": decision.arm}
    for k, name in enumerate(econ.arm_names):
        policies[f"everyone_{name}"] = _cut(np.full(n, k), rng.permutation(n), spend, econ,
                                            share)
    policies["random"] = _cut(random_like(decision.arm, seed=seed), rng.permutation(n), spend,
                              econ, share)
    response_score, response_source = _response_score(campaign, experiment, test_ids,
                                                       outcomes[:, 0])
    counts = decision.contacts_by_arm
    top = top_by_score(response_score, int(counts.sum()),
                       arm=int(np.argmax(counts)) if counts.sum() else 0)
    policies["response_top"] = _cut(top, np.argsort(-response_score, kind="stable"), spend,
                                    econ, share)
    by_rules = rules_apply(version.explanations, X)
    if by_rules is not None:
        rule_arm, leaf_profit = by_rules
        policies["rules"] = _cut(rule_arm, np.argsort(-leaf_profit, kind="stable"), spend,
                                 econ, share)
    policies["no_one"] = np.full(n, -1, dtype=np.int64)

    economics = {"value_per_conversion": econ.value, "cost_per_contact": econ.cost,
                 "conversion_cost": econ.conversion_cost}
    compared = policy_comparison(policies, data, reference="no_one", level=LEVEL, **economics)
    harm = {g: (held_out(treatment, _observed(experiment, experiment.metrics.get(name=g), ids,
                                               code)[1], weights, mu=guard_mu[g]), j)
            for j, g in enumerate(econ.guardrails)}
    revenue_data = _revenue_data(experiment, primary, ids, code, treatment, weights)
    truth = _truth(experiment, arms, ids)

    result = {}
    for name, arm in policies.items():
        estimate = compared.estimates[name]
        chosen = np.flatnonzero(arm >= 0)
        entry = {
            "contacts": int(chosen.size),
            "contacts_by_arm": dict(zip(econ.arm_names, np.bincount(
                arm[chosen], minlength=len(econ.arm_names)).tolist(), strict=True)),
            "spend": float(spend[chosen, arm[chosen]].sum()),
            "conversions": _json(estimate.incremental_conversions),
            "profit": _json(estimate.incremental_profit),
            "predicted": {
                "conversions": float(uplift[chosen, arm[chosen]].sum()),
                "profit": float((uplift[chosen, arm[chosen]] * econ.value
                                 - spend[chosen, arm[chosen]]).sum()),
                "priced_profit": float(decision.profit_by_arm[chosen, arm[chosen]].sum()),
            },
        }
        entry["guardrail_harm"] = {}
        for g, (harm_data, j) in harm.items():
            e = policy_value(arm, harm_data, level=LEVEL).incremental_conversions
            sign = float(econ.guard_sign[j])  # harm = rise of a bad metric, fall of a good one
            low, high = sorted((sign * e.low, sign * e.high))
            entry["guardrail_harm"][g] = {"value": sign * e.value, "se": e.se, "low": low,
                                          "high": high}
        if np.any(econ.guard_price > 0):
            entry["priced_profit"] = _priced(estimate.incremental_profit, entry["guardrail_harm"],
                                             econ)
        if revenue_data is not None:
            entry["revenue"] = _json(policy_value(arm, revenue_data, level=LEVEL)
                                     .incremental_conversions)
        if truth is not None:
            conversions = truth[chosen, arm[chosen]]
            entry["true"] = {"conversions": float(conversions.sum()),
                             "profit": float((conversions * econ.value
                                              - spend[chosen, arm[chosen]]).sum())}
        entry["profit_vs_no_one"] = _json(compared.profit_vs_reference[name])
        result[name] = entry

    best = decision.profit_by_arm.max(axis=1)
    curves = {"overall": _curve(np.where(best > 0, decision.profit_by_arm.argmax(axis=1), -1),
                                best, data, economics)}
    curves["arms"] = {name: _curve(np.full(n, k), decision.profit_by_arm[:, k], data, economics)
                      for k, name in enumerate(econ.arm_names)}
    return {
        "available": True, "method": "dr", "level": LEVEL, "rows": int(n),
        "eligible": int(eligible), "share": share, "response_baseline": response_source,
        "limits": {"budget": None if econ.budget is None else econ.budget * share,
                   "max_contacts": None if econ.max_contacts is None
                   else int(econ.max_contacts * share)},
        "policies": result, "curves": curves,
    }


def _features_as_of_assignment(experiment: Experiment, spec: FeatureSpec,
                               ids: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
    """The rows' features as of their assignment (what training saw), in id order."""
    frames, found = [], []
    for chunk in features_build(spec=spec, source=assignment_cutoffs(experiment.id)):
        keep = np.isin(chunk.customer_ids, ids)
        frames.append(chunk.frame[keep])
        found.append(chunk.customer_ids[keep])
    found_ids = np.concatenate(found) if found else np.empty(0, dtype=np.int64)
    X = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    order = np.argsort(found_ids, kind="stable")
    return X.iloc[order].reset_index(drop=True), found_ids[order]


def _observed(experiment: Experiment, metric: Metric, ids: np.ndarray,
              code: dict[int, int]) -> tuple[np.ndarray, np.ndarray]:
    rows = outcome_rows(experiment, metric)
    at = np.searchsorted(rows.customer_ids, ids)
    if not np.array_equal(rows.customer_ids[np.minimum(at, rows.customer_ids.size - 1)], ids):
        raise ValueError("held-out customers are missing from the experiment's outcomes")
    treatment = np.array([code[a] for a in rows.arm_ids[at].tolist()], dtype=np.int64)
    return treatment, rows.y[at]


def _revenue_data(experiment, primary, ids, code, treatment, weights):
    """Revenue (a SUM metric on purchases) by IPW: the model predicts conversion, not revenue."""
    metric = (experiment.metrics.filter(aggregation=Metric.Aggregation.SUM)
              .exclude(pk=primary.pk).order_by("id").first())
    if metric is None:
        return None
    return held_out(treatment, _observed(experiment, metric, ids, code)[1], weights)


def _truth(experiment: Experiment, arms, ids: np.ndarray) -> np.ndarray | None:
    rows = TrueEffect.objects.filter(experiment=experiment, customer_id__in=ids.tolist())
    column = {arm.id: k for k, arm in enumerate(arms[1:])}
    truth = np.full((ids.size, len(column)), np.nan)
    for customer_id, arm_id, value in rows.values_list("customer_id", "arm_id",
                                                       "conversion_uplift").iterator(
            chunk_size=20_000):
        truth[np.searchsorted(ids, customer_id), column[arm_id]] = value
    return None if np.isnan(truth).any() else truth


def _response_score(campaign, experiment, ids, control_outcome) -> tuple[np.ndarray, str]:
    version = champion(campaign.id, ModelVersion.Kind.RESPONSE)
    if version is not None:
        X, found = _features_as_of_assignment(experiment, FeatureSpec.from_json(
            version.feature_spec), ids)
        if np.array_equal(found, ids):
            score = np.asarray(artifact_load(version).predict_proba(X))[:, 1]
            return score, f"response champion model version {version.id}"
    return control_outcome, "the uplift model's predicted control outcome"


def _cut(arm: np.ndarray, priority: np.ndarray, spend: np.ndarray, econ: Economics,
         share: float) -> np.ndarray:
    """Keep contacts in ``priority`` order while the scaled budget and cap allow."""
    arm = np.asarray(arm, dtype=np.int64).copy()
    ordered = priority[arm[priority] >= 0]
    cost = spend[ordered, arm[ordered]]
    keep = np.ones(ordered.size, dtype=bool)
    if econ.budget is not None:
        keep &= np.cumsum(cost) <= econ.budget * share + 1e-9
    if econ.max_contacts is not None:
        keep &= np.arange(1, ordered.size + 1) <= int(econ.max_contacts * share)
    arm[ordered[~keep]] = -1
    return arm


def _curve(arm, score, data, economics) -> dict:
    curve = policy_profit_curve(arm, score, data, points=CURVE_POINTS, level=LEVEL, **economics)
    return {"contacts": curve.contacts.tolist(), "profit": curve.profit.tolist(),
            "low": curve.low.tolist(), "high": curve.high.tolist()}


def _priced(profit: Estimate, harms: dict[str, dict], econ: Economics) -> dict:
    price = dict(zip(econ.guardrails, econ.guard_price.tolist(), strict=True))
    value = profit.value - sum(price[g] * h["value"] for g, h in harms.items())
    se = profit.se + sum(price[g] * h["se"] for g, h in harms.items())
    z = (profit.high - profit.value) / profit.se if profit.se > 0 else 1.959963984540054
    return {"value": value, "se": se, "low": value - z * se, "high": value + z * se,
            "se_is_upper_bound": True}


def _json(estimate: Estimate) -> dict:
    return {"value": estimate.value, "se": estimate.se, "low": estimate.low,
            "high": estimate.high}
