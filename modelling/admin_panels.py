"""The "why this model chooses this arm" panel on a customer's admin page.

Registered with marketing.customer_panels in ModellingConfig.ready. Shown for
each campaign whose champion uplift model has scored the customer; the
numbers are formatted for people: uplift in the unit of the metric the model
predicts (percentage points for a conversion, money for a summed value such
as revenue, events per customer for a count), money with two decimals.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.template.loader import render_to_string
from django.utils.safestring import SafeString

from core.templatetags.humanize_extra import effect
from experiments.models import Metric
from experiments.results import UNIT_OF_AGGREGATION
from marketing.models import Customer
from modelling.explanations import customer_explanation
from modelling.models import CustomerScore, ModelVersion

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class UpliftUnit:
    """What a model's uplift is measured in: ``kind`` is core.units' (pp, money, count)."""

    kind: str
    events: str = ""  # for a count: what is counted, e.g. "orders"


CONVERSIONS = UpliftUnit("pp")


def uplift_units(versions) -> dict[int, UpliftUnit]:
    """``{version id: unit}`` from each version's target metric: one query for all of them.

    A version whose experiment or metric is gone reads as conversions (the
    uplift models' default outcome).
    """
    versions = list(versions)
    metrics = {(m.experiment_id, m.name): m for m in Metric.objects.filter(
        experiment_id__in={v.experiment_id for v in versions if v.experiment_id},
        name__in={v.target_metric for v in versions}).only(
            "experiment_id", "name", "aggregation")}
    units = {}
    for v in versions:
        metric = metrics.get((v.experiment_id, v.target_metric))
        kind = UNIT_OF_AGGREGATION.get(metric.aggregation, "pp") if metric else "pp"
        units[v.id] = UpliftUnit(kind, metric.name if kind == "count" else "")
    return units


def uplift_text(value: float | None, unit: UpliftUnit) -> str:
    """+2.1 pp for a conversion; +€0.35 for revenue; +0.12 orders for a count."""
    if value is None:
        return "—"
    return f"{effect(value, unit.kind)} {unit.events}".strip()


def money_text(value: float) -> str:
    return f"{value:,.2f}"


def value_text(value) -> str:
    if value is None:
        return "missing"
    if isinstance(value, float):
        return f"{value:,.0f}" if value == int(value) else f"{value:,.2f}"
    return str(value)


def _display(answer: dict, unit: UpliftUnit) -> dict:
    return {
        **answer,
        "cost_text": money_text(answer["cost_per_contact"]),
        "value_text": money_text(answer["value_per_conversion"]),
        "arms": [{**arm, "uplift_text": uplift_text(arm["uplift"], unit),
                  "profit_text": money_text(arm["expected_profit"]),
                  "baseline_text": uplift_text(arm["baseline_uplift"], unit),
                  "features": [{**f, "value_text": value_text(f["value"]),
                                "contribution_text": uplift_text(f["contribution"], unit)}
                               for f in arm["features"]]}
                 for arm in answer["arms"]],
    }


def customer_explanation_panel(customer: Customer) -> SafeString | None:
    """One section per champion uplift model that scored the customer; None without one."""
    if customer.erased_at is not None:
        return None
    versions = (ModelVersion.objects.filter(
        kind=ModelVersion.Kind.UPLIFT, is_champion=True,
        id__in=CustomerScore.objects.of_customer(customer).values("model_version_id"))
        .select_related("campaign").order_by("campaign__key"))
    versions = list(versions)
    units = uplift_units(versions)
    sections = []
    for version in versions:
        try:
            answer = _display(customer_explanation(customer=customer, model_version=version),
                              units[version.id])
            sections.append({"version": version, "answer": answer, "error": ""})
        except ValidationError as exc:  # e.g. a missing artifact: say so, keep the page
            sections.append({"version": version, "answer": None,
                             "error": "; ".join(exc.messages)})
        except Exception as exc:  # a broken model must not take the customer's page down
            logger.exception("explaining customer %s with model %s failed", customer.pk,
                             version.pk)
            sections.append({"version": version, "answer": None,
                             "error": f"{type(exc).__name__}: {exc}"})
    if not sections:
        return None
    return render_to_string("admin/modelling/customer_explanation.html", {"sections": sections})


def customer_scores_panel(customer: Customer) -> SafeString | None:
    """The customer's scores, one row per model version: uplift per arm and the best arm.

    Uplift is in the unit of each model's target metric (``uplift_units``).
    Three queries whatever the customer: the version ids, the scores through
    the (version, customer) index (CustomerScore.objects.of_customer), and
    the versions' metrics.
    """
    scores = list(CustomerScore.objects.of_customer(customer)
                  .select_related("model_version__campaign")
                  .only("uplift", "best_arm", "uplift_by_arm", "scored_at",
                        "model_version__id", "model_version__estimator",
                        "model_version__is_champion", "model_version__campaign__name",
                        "model_version__experiment_id", "model_version__target_metric")
                  .order_by("-model_version_id"))
    units = uplift_units(s.model_version for s in scores) if scores else {}
    rows = [{"score": s, "arms": [(arm, uplift_text(value, units[s.model_version_id]))
                                  for arm, value in (s.uplift_by_arm or {}).items()]}
            for s in scores]
    return render_to_string("admin/modelling/customer_scores.html", {"rows": rows})
