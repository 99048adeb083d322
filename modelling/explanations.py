"""Why an uplift model predicts what it does, in words a campaign manager reads.

Stored with each uplift model version at training time, on held-out rows (a
sample of at most ``SAMPLE_ROWS`` of the test split, which the model never
saw: on training rows a network that memorised noise would show the noise as
a driver):

- **drivers**: per treated arm, the features ranked by how much they move the
  predicted uplift (models_dl.explain.uplift_drivers: integrated gradients
  for the deep estimators, permutation importance for anything else), by the
  feature spec's names, a one-hot categorical counted once;
- **rules**: a depth <= 3 tree saying who gets which arm, or no contact, at
  the campaign's economics per arm (models_dl.rules.policy_rules fitted to
  modelling.economics.arm_profit, the table targeting ranks:
  ``profit_ik = uplift_ik * value - cost_k - conversion_cost_k * treated_ik
  - sum_g price_g * harm_ikg``, with the arm's own costs and the campaign's
  harm prices), and the share of the model's own policy value they keep,
  ``sum_i profit_i,rules(i) / sum_i profit_i,model(i)`` where ``model(i)`` is
  the row's most profitable action under the predicted uplift: on predicted
  profit, and on true profit when the experiment stores true effects (the
  demo: the true uplift in the same formula, with the predicted treated
  outcome and harm, whose truth is not stored);
- **baseline**: the mean network-input row of the sample, so a single
  customer is explained later against the same "average held-out customer"
  without keeping any held-out customer's values.

:func:`customer_explanation` answers "why this customer": the arm chosen at
the campaign's current costs, each arm's uplift and profit, the stored rule
that covers them and the features pushing their uplift up or down, from
their features as of now, checked against their stored score.

The rules are fitted at the costs the campaign had at training time (stored
beside them); a customer's explanation says so when the costs have changed
since.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from django.core.exceptions import ValidationError
from django.utils import timezone

from core.small_cells import privacy_min_cell
from marketing.features import FeatureSpec, features_build, fixed_cutoff
from marketing.models import Campaign, Customer, CustomerAttribute
from modelling.economics import Economics, arm_profit, economics_build, predicted_arrays
from modelling.models import CustomerScore, ModelVersion
from modelling.registry import artifact_load, champion, guardrail_models_load
from models_dl.explain import explain_customers, ig_baseline, policy_rules, uplift_drivers
from models_dl.rules import best_action

SAMPLE_ROWS = 2_000
RULES_DEPTH = 3
TOP_FEATURES = 5
NO_CONTACT = "no contact"
# Stored scores are rounded to 6 decimals and computed in float32: a score
# further than this from the prediction was made from other features.
SCORE_TOLERANCE = 1e-5
KIND_WORDS = {"purchase": "purchase", "visit": "visit", "email_open": "e-mail open",
              "email_click": "e-mail click"}


# ------------------------------------------------------------------- reading
def feature_labels(spec: FeatureSpec) -> dict[str, str]:
    """Feature name -> words: ``purchases_90d`` -> "purchases in the last 90 days".

    Attributes use their declared label. Labels are unique (a clash keeps the
    name), so rule conditions, which carry labels, map back to features.
    """
    declared = dict(CustomerAttribute.objects.filter(key__in=spec.attributes)
                    .exclude(label="").values_list("key", "label"))
    labels = {key: declared.get(key, key.replace("_", " ")) for key in spec.attributes}
    for kind in spec.kinds:
        word = KIND_WORDS.get(kind, kind.replace("_", " "))
        for days in spec.windows:
            labels[f"{kind}s_{days}d"] = f"{word}s in the last {days} days"
        labels[f"days_since_{kind}"] = f"days since the last {word}"
    for days in spec.windows:
        labels[f"revenue_{days}d"] = f"revenue in the last {days} days"
    seen: dict[str, int] = {}
    for label in labels.values():
        seen[label] = seen.get(label, 0) + 1
    return {name: label if seen[label] == 1 else name for name, label in labels.items()}


def explanation_sample(n_rows: int, *, limit: int = SAMPLE_ROWS, seed: int = 0) -> np.ndarray:
    """Sorted positions of at most ``limit`` of ``n_rows`` rows, drawn with ``seed``."""
    if n_rows <= limit:
        return np.arange(n_rows)
    return np.sort(np.random.default_rng(seed).choice(n_rows, size=limit, replace=False))


def _rules_frame(X: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, float]]:
    """The features for the rules, numeric gaps filled with the column's median.

    The tree needs finite numbers; the fill values are stored so that a
    customer is matched to a rule with the same fill.
    """
    frame, fill = X.copy(), {}
    for name in frame.columns:
        column = frame[name]
        if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
            median = float(column.median()) if column.notna().any() else 0.0
            if column.isna().any():
                frame[name] = column.fillna(median)
            fill[str(name)] = median
    return frame, fill


def version_predictions(version: ModelVersion, estimator: Any, X: pd.DataFrame,
                        econ: Economics) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Uplift ``(n, K)``, treated outcome ``(n, K)`` and harm ``(n, K, G)`` of rows ``X``.

    What modelling.economics.arm_profit takes: the uplift model's per-arm
    outcomes and, for the guardrails ``econ`` carries, the version's
    guardrail models' effects (the numbers scoring stores for targeting).
    """
    outcomes = np.asarray(estimator.predict_outcomes(X), dtype=np.float64).reshape(len(X), -1)
    guard_models = guardrail_models_load(version) if econ.guardrails else {}
    guard_mu = {g: np.asarray(guard_models[g].predict_outcomes(X)) for g in econ.guardrails}
    uplift, treated, guard = predicted_arrays(econ, outcomes, guard_mu)
    return uplift, treated, guard


def _policy_value(profit: np.ndarray, action: np.ndarray) -> float:
    """Mean profit per customer of giving row i ``action[i]`` (no contact: 0)."""
    rows = np.flatnonzero(action >= 0)
    return float(profit[rows, action[rows]].sum() / max(profit.shape[0], 1))


def _value_share(rules, frame: pd.DataFrame, profit: np.ndarray,
                 reference: np.ndarray) -> dict[str, Any]:
    """The rules' and the model policy's value per customer, and their ratio."""
    model_value = _policy_value(profit, reference)
    rules_value = _policy_value(profit, rules.predict(frame))
    out = {"model_per_customer": model_value, "rules_per_customer": rules_value, "share": None,
           "note": ""}
    if model_value > 0:
        out["share"] = rules.value_share(frame, profit, reference, kind="profit")
    else:
        out["note"] = "the model's policy has no positive value on these rows"
    return out


def _economics_stamp(econ: Economics) -> dict[str, Any]:
    """The economics the rules were fitted at, stored beside them to spot a change later."""
    return {
        "cost_per_contact": econ.default_cost, "value_per_conversion": econ.value,
        "cost_per_contact_by_arm": dict(zip(econ.arm_names, econ.cost.tolist(), strict=True)),
        "cost_per_conversion_by_arm": dict(zip(econ.arm_names, econ.conversion_cost.tolist(),
                                               strict=True)),
        "harm_prices": dict(zip(econ.guardrails, econ.guard_price.tolist(), strict=True)),
    }


# ---------------------------------------------------------- model versions
def version_explanations_build(
    *, version: ModelVersion, estimator: Any, X: pd.DataFrame, arm_names: list[str],
    unit: str = "conversions", true_effect: np.ndarray | None = None, random_state: int = 0,
) -> dict[str, Any]:
    """Drivers, rules and baseline of a fitted estimator on held-out rows ``X``.

    ``arm_names``: the treated arms, in uplift-column order. ``true_effect``:
    ``(n, K)`` true uplift of the same rows, when known.
    """
    X = X.reset_index(drop=True)
    econ = economics_build(campaign=version.campaign, version=version)
    drivers = uplift_drivers(estimator, X, arm_names=arm_names, random_state=random_state)
    uplift, treated, guard = version_predictions(version, estimator, X, econ)
    predicted_profit = arm_profit(econ, uplift, treated, guard)
    labels = feature_labels(FeatureSpec.from_json(version.feature_spec))
    labels.update({str(c): str(c) for c in X.columns if str(c) not in labels})
    frame, fill = _rules_frame(X)
    # No rule about fewer customers than a small cell (core.small_cells), nor 2 % of them.
    min_leaf_share = max(0.02, privacy_min_cell() / max(len(frame), 1))
    rules = policy_rules(frame, uplift, feature_names=[labels[str(c)] for c in frame.columns],
                         max_depth=RULES_DEPTH, cost_per_contact=econ.cost,
                         min_leaf_share=min(min_leaf_share, 0.5),
                         value_per_conversion=econ.value, profit=predicted_profit,
                         arm_names=arm_names, unit=unit, random_state=random_state)
    model_action = best_action(predicted_profit)
    shares = {"predicted": _value_share(rules, frame, predicted_profit, model_action)}
    if true_effect is not None:
        true_profit = arm_profit(econ, np.asarray(true_effect).reshape(len(X), -1), treated,
                                 guard)
        shares["true"] = _value_share(rules, frame, true_profit, model_action)
    return {
        "method": drivers.method,
        "n_rows": len(X),
        "unit": unit,
        "arm_names": list(arm_names),
        "labels": labels,
        "drivers": json.loads(drivers.to_json()),
        # Integrated gradients only: the "average held-out customer" per-customer
        # reasons are measured against (models_dl.explain.ig_baseline).
        "baseline": (ig_baseline(estimator, X).astype(float).tolist()
                     if drivers.method == "integrated_gradients" else None),
        "rules": {
            **_economics_stamp(econ), "max_depth": RULES_DEPTH,
            "text": rules.text, "rules": json.loads(rules.to_json()), "fill": fill,
            "value_share": shares,
        },
        "computed_at": timezone.now().isoformat(),
    }


def model_version_explain(*, version: ModelVersion, estimator: Any, X: pd.DataFrame,
                          arm_names: list[str], unit: str = "conversions",
                          true_effect: np.ndarray | None = None,
                          random_state: int = 0) -> dict[str, Any]:
    """Build the version's explanations on held-out rows ``X`` and store them with it."""
    if version.kind != ModelVersion.Kind.UPLIFT:
        raise ValidationError({"model_version": "only uplift models are explained"})
    explanations = version_explanations_build(
        version=version, estimator=estimator, X=X, arm_names=arm_names, unit=unit,
        true_effect=true_effect, random_state=random_state)
    ModelVersion.objects.filter(pk=version.pk).update(explanations=explanations)
    version.explanations = explanations
    return explanations


# -------------------------------------------------------------- customers
def explained_version(*, model_version: ModelVersion | None = None,
                      campaign: Campaign | None = None) -> ModelVersion:
    """The version to explain with: the given one, or the campaign's champion uplift model.

    Without either, the only campaign with a champion uplift model.
    """
    if model_version is not None:
        if (model_version.kind != ModelVersion.Kind.UPLIFT
                or model_version.status != ModelVersion.Status.READY):
            raise ValidationError({"model_version": "must be a ready uplift model"})
        return model_version
    if campaign is not None:
        version = champion(campaign.id, ModelVersion.Kind.UPLIFT)
        if version is None:
            raise ValidationError({"campaign": f"campaign {campaign.key} has no champion uplift "
                                               "model; train one first"})
        return version
    champions = list(ModelVersion.objects.filter(kind=ModelVersion.Kind.UPLIFT, is_champion=True)
                     .select_related("campaign").order_by("campaign__key")[:2])
    if not champions:
        raise ValidationError({"model_version": "no campaign has a champion uplift model; "
                                                "train one first"})
    if len(champions) > 1:
        raise ValidationError({"campaign": "several campaigns have a champion uplift model; "
                                           "name the campaign or the model version"})
    return champions[0]


def _condition_holds(condition: dict, value: Any, fill: dict[str, float], name: str) -> bool:
    op, bound = condition["op"], condition["value"]
    if op in ("<=", ">"):
        number = float("nan") if value is None else float(value)
        if math.isnan(number):
            number = fill.get(name, 0.0)
        return number <= bound if op == "<=" else number > bound
    present = value is not None and not (isinstance(value, float) and math.isnan(value))
    if op == "is":
        return present and str(value) == bound
    return not present or str(value) != bound  # "is not"


def covering_rule(explanations: dict, row: dict[str, Any]) -> dict | None:
    """The stored rule whose conditions the customer's features meet (the leaves partition)."""
    rules = explanations.get("rules") or {}
    by_label = {label: name for name, label in explanations.get("labels", {}).items()}
    fill = rules.get("fill", {})
    for rule in rules.get("rules", []):
        if all(_condition_holds(c, row.get(by_label.get(c["feature"], c["feature"])), fill,
                                by_label.get(c["feature"], c["feature"]))
               for c in rule["conditions"]):
            return rule
    return None


def rules_apply(explanations: dict, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray] | None:
    """Each row's action under the stored rules and its leaf's mean profit; None without rules.

    Vectorised :func:`covering_rule` (same conditions, same fill of missing
    numbers). The action is the treated arm's index in ``arm_names`` order
    or -1 (no contact, also for a row no rule covers); the leaf's mean
    profit, the rules' own estimate at fit time, ranks the rows when a
    budget cuts the list.
    """
    rules = (explanations or {}).get("rules") or {}
    if not rules.get("rules"):
        return None
    arm_names = list(explanations.get("arm_names", []))
    by_label = {label: name for name, label in explanations.get("labels", {}).items()}
    fill = rules.get("fill", {})
    n = len(X)
    action, profit = np.full(n, -1, dtype=np.int64), np.zeros(n)
    free = np.ones(n, dtype=bool)
    for rule in rules["rules"]:
        holds = free.copy()
        for condition in rule["conditions"]:
            name = by_label.get(condition["feature"], condition["feature"])
            column = X[name] if name in X.columns else pd.Series([None] * n, index=X.index)
            op, bound = condition["op"], condition["value"]
            if op in ("<=", ">"):
                number = pd.to_numeric(column, errors="coerce").astype(float)
                number = number.fillna(fill.get(name, 0.0)).to_numpy()
                holds &= number <= bound if op == "<=" else number > bound
            else:
                present = column.notna().to_numpy()
                same = (column.astype(str) == bound).to_numpy() & present
                holds &= same if op == "is" else ~same
        name = rule.get("action_name")
        action[holds] = arm_names.index(name) if name in arm_names else -1
        profit[holds] = float(rule.get("mean_profit", 0.0))
        free &= ~holds
    return action, profit


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _score_check(version: ModelVersion, customer: Customer, uplift: np.ndarray,
                 arm_names: list[str]) -> dict | None:
    """The stored score beside the prediction: the same best arm and uplift per arm?"""
    score = CustomerScore.objects.filter(model_version=version, customer=customer).first()
    if score is None:
        return None
    best = arm_names[int(np.argmax(uplift))]
    gaps = [abs(float(score.uplift_by_arm[arm]) - float(u))
            for arm, u in zip(arm_names, uplift, strict=True) if arm in score.uplift_by_arm]
    consistent = (score.best_arm == best and len(gaps) == len(arm_names)
                  and max(gaps, default=0.0) <= SCORE_TOLERANCE)
    note = ""
    if not consistent:
        def listed(values: dict) -> str:
            return ", ".join(f"{arm} {float(u):+.4f}" for arm, u in values.items())

        note = (f"The stored score (scored {score.scored_at:%Y-%m-%d %H:%M} UTC) is stale: its "
                f"highest uplift was {score.best_arm or 'none'} ({listed(score.uplift_by_arm)}); "
                f"from the customer's features now it is {best} "
                f"({listed(dict(zip(arm_names, uplift.tolist(), strict=True)))}). "
                f"Rescore to update it.")
    return {"best_arm": score.best_arm, "uplift_by_arm": score.uplift_by_arm,
            "scored_at": score.scored_at, "consistent": consistent, "note": note}


def _changed(stored: dict, now: dict) -> bool:
    """Whether the economics the rules were fitted at differ from ``now`` (older rules: the
    keys they stored)."""
    return any(stored[key] != value for key, value in now.items() if key in stored)


def customer_explanation(*, customer: Customer, model_version: ModelVersion | None = None,
                         campaign: Campaign | None = None,
                         as_of: datetime | None = None) -> dict[str, Any]:
    """Why the model gives this customer the arm it does, from their features as of ``as_of``.

    ``as_of`` defaults to now. The chosen arm is the most profitable at the
    campaign's current economics per arm, the profit targeting ranks
    (modelling.economics.arm_profit: the arm's contact and expected
    conversion costs, priced guardrail harm), or no contact when no arm's
    profit is positive.
    """
    # Read from the database: an erasure may have happened since ``customer`` was loaded.
    if Customer.objects.filter(pk=customer.pk, erased_at__isnull=False).exists():
        raise ValidationError({"customer": "the customer was erased; erased customers are not "
                                           "explained"})
    version = explained_version(model_version=model_version, campaign=campaign)
    try:
        estimator = artifact_load(version)
    except (FileNotFoundError, ValueError) as exc:
        raise ValidationError({"model_version": str(exc)}) from exc
    as_of = as_of or timezone.now()
    spec = FeatureSpec.from_json(version.feature_spec)
    (chunk,) = features_build(spec=spec, source=fixed_cutoff(as_of, "SELECT %s AS id",
                                                             [customer.id]))
    X = chunk.frame
    econ = economics_build(campaign=version.campaign, version=version)
    uplift_rows, treated, guard = version_predictions(version, estimator, X, econ)
    # The arm a targeting list would give: the same profit table, the same argmax.
    profit = arm_profit(econ, uplift_rows, treated, guard)[0]
    action = int(best_action(profit[None, :])[0])
    uplift = uplift_rows[0]
    explanations = version.explanations or {}
    arm_names = list(econ.arm_names)
    cost, value = econ.default_cost, econ.value

    notes = []
    reasons = None
    if explanations.get("baseline") is not None:
        (reasons,) = explain_customers(estimator, X, top=TOP_FEATURES, arm_names=arm_names,
                                       baseline=explanations["baseline"])
    else:
        notes.append("This model version has no stored explanation baseline (trained before "
                     "explanations were stored, or not a deep model): no per-feature reasons.")
    labels = explanations.get("labels", {})
    arms = []
    for k, arm in enumerate(arm_names):
        entry = {"arm": arm, "uplift": float(uplift[k]), "expected_profit": float(profit[k]),
                 "baseline_uplift": None, "other": None, "features": []}
        if reasons is not None:
            reason = reasons[k]
            entry.update(baseline_uplift=reason.baseline_uplift, other=reason.other, features=[
                {"feature": c.feature, "label": labels.get(c.feature, c.feature),
                 "value": _plain(c.value), "contribution": c.contribution}
                for c in reason.contributions])
        arms.append(entry)

    row = {str(name): _plain(v) for name, v in X.iloc[0].items()}
    rule = covering_rule(explanations, row)
    stored_rules = explanations.get("rules") or {}
    if rule is None:
        notes.append("No targeting rules are stored with this model version.")
    elif _changed(stored_rules, _economics_stamp(econ)):
        same_totals = (stored_rules["cost_per_contact"], stored_rules["value_per_conversion"]) == (
            cost, value)
        notes.append(f"The rules were fitted at cost {stored_rules['cost_per_contact']:.2f} "
                     f"and value {stored_rules['value_per_conversion']:.2f} per conversion; "
                     f"the campaign now has {cost:.2f} and {value:.2f}"
                     + (" (its arms' costs or harm prices changed)" if same_totals else "")
                     + ". Retrain to refit them.")
    score = _score_check(version, customer, uplift, arm_names)
    if score is not None and score["note"]:
        notes.append(score["note"])
    return {
        "customer": customer.external_id,
        "model_version": version.id,
        "campaign": version.campaign.key,
        "as_of": as_of,
        "unit": explanations.get("unit", "conversions"),
        "cost_per_contact": cost,
        "value_per_conversion": value,
        "chosen_arm": NO_CONTACT if action < 0 else arm_names[action],
        "arms": arms,
        "rule": None if rule is None else {"text": rule["text"], "action": rule["action_name"],
                                           "conditions": rule["conditions"]},
        "score": score,
        "notes": notes,
    }
