"""The "why this model chooses this arm" panel on a customer's admin page.

Registered with marketing.customer_panels in ModellingConfig.ready. Shown for
each campaign whose champion uplift model has scored the customer; the
numbers are formatted for people: uplift in percentage points for a
conversion metric, money with two decimals.
"""

from __future__ import annotations

import logging

from django.core.exceptions import ValidationError
from django.template.loader import render_to_string
from django.utils.safestring import SafeString

from marketing.models import Customer
from modelling.explanations import customer_explanation
from modelling.models import CustomerScore, ModelVersion

logger = logging.getLogger(__name__)


def uplift_text(value: float | None, unit: str) -> str:
    """+2.1 pp for a conversion probability; +0.35 revenue otherwise."""
    if value is None:
        return "-"
    if unit == "conversions":
        return f"{value * 100:+.1f} pp"
    return f"{value:+.2f} {unit}"


def money_text(value: float) -> str:
    return f"{value:,.2f}"


def value_text(value) -> str:
    if value is None:
        return "missing"
    if isinstance(value, float):
        return f"{value:,.0f}" if value == int(value) else f"{value:,.2f}"
    return str(value)


def _display(answer: dict) -> dict:
    unit = answer["unit"]
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
    sections = []
    for version in versions:
        try:
            answer = _display(customer_explanation(customer=customer, model_version=version))
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

    Uplift is shown in percentage points (the uplift models predict conversion).
    Two queries whatever the customer: the version ids, then the scores through
    the (version, customer) index (CustomerScore.objects.of_customer).
    """
    scores = list(CustomerScore.objects.of_customer(customer)
                  .select_related("model_version__campaign")
                  .only("uplift", "best_arm", "uplift_by_arm", "scored_at",
                        "model_version__id", "model_version__estimator",
                        "model_version__is_champion", "model_version__campaign__name")
                  .order_by("-model_version_id"))
    rows = [{"score": s, "arms": [(arm, uplift_text(value, "conversions"))
                                  for arm, value in (s.uplift_by_arm or {}).items()]}
            for s in scores]
    return render_to_string("admin/modelling/customer_scores.html", {"rows": rows})
