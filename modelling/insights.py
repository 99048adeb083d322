"""What the champion model says about an experiment's segments, for the experiment's pages.

Registered with ``experiments.results.model_insight_register`` in
``ModellingConfig.ready`` (experiments may not import modelling).

The model's mean predicted uplift per segment is one SQL aggregate per
breakdown (a declared segment, or an attribute with its values), over the
experiment's assigned customers that the champion scored: the same customers
the segment's observed effect is measured on. Only the segments named in the
analysis are computed, so the work is bounded by the analysis, not the
customers table. An attribute's ``other`` cell (the values the analysis
merged) is the attribute's total minus its named values: sums add up.
"""

from __future__ import annotations

from django.db.models import Avg, Count, F, FloatField, Sum
from django.db.models.expressions import RawSQL
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast
from django.urls import reverse

from experiments.analysis import MISSING, OTHER
from experiments.models import Assignment, Experiment
from experiments.outcomes import _attribute_sql
from experiments.results import ModelInsight
from marketing.models import Segment
from marketing.segment_rules import segment_members
from modelling.models import CustomerScore, ModelVersion, TargetingList


def _uplift(arm: str):
    return Cast(KeyTextTransform(arm, "uplift_by_arm"), FloatField())


def _scored(experiment: Experiment, champion: ModelVersion):
    return CustomerScore.objects.filter(
        model_version=champion,
        customer_id__in=Assignment.objects.filter(experiment=experiment).values("customer_id"))


def experiment_model_insight(experiment: Experiment, segments: list[str]) -> ModelInsight:
    champion = (ModelVersion.objects.filter(campaign_id=experiment.campaign_id,
                                            kind=ModelVersion.Kind.UPLIFT, is_champion=True)
                .order_by("-created_at").first())
    latest_list = (TargetingList.objects.filter(campaign_id=experiment.campaign_id)
                   .order_by("-created_at", "-id").values("id", "size").first())
    targeting = None
    if latest_list:
        targeting = {**latest_list, "url": reverse("admin:modelling_targetinglist_change",
                                                   args=[latest_list["id"]])}
    if champion is None:
        return ModelInsight(targeting=targeting)
    arms = list(champion.metrics.get("arm_names", [])[1:])
    uplift: dict[str, dict[str, float]] = {arm: {} for arm in arms}
    scored = _scored(experiment, champion)
    averages = {f"u{i}": Avg(_uplift(arm)) for i, arm in enumerate(arms)}

    def put(label: str, row: dict) -> None:
        for i, arm in enumerate(arms):
            if row.get(f"u{i}") is not None:
                uplift[arm][label] = float(row[f"u{i}"])

    keys = [s.removeprefix("segment:") for s in segments if s.startswith("segment:")]
    as_of = experiment.started_at
    for segment in Segment.objects.filter(key__in=keys):
        members = segment_members(segment.rule, as_of=as_of).values("id")
        put(f"segment:{segment.key}", scored.filter(customer_id__in=members).aggregate(**averages))

    by_attribute: dict[str, list[str]] = {}
    for label in segments:
        if not label.startswith("segment:") and "=" in label:
            attribute, value = label.split("=", 1)
            by_attribute.setdefault(attribute, []).append(value)
    sums = {f"s{i}": Sum(_uplift(arm)) for i, arm in enumerate(arms)}
    for attribute, values in by_attribute.items():
        sql, params = _attribute_sql(attribute)
        # F("customer__attributes") joins the customer table under its own
        # name, which the attribute SQL (shared with the analysis) refers to.
        cells = (scored.annotate(_attributes=F("customer__attributes"),
                                 v=RawSQL(sql, params))
                 .values("v").annotate(n=Count("id"), **sums).order_by())
        named = {v for v in values if v != OTHER}
        other_n, other = 0, [0.0] * len(arms)
        for cell in cells:
            value = MISSING if cell["v"] is None else str(cell["v"])
            if value in named:
                put(f"{attribute}={value}", {f"u{i}": (cell[f"s{i}"] / cell["n"])
                                             if cell[f"s{i}"] is not None else None
                                             for i in range(len(arms))})
            else:
                other_n += cell["n"]
                for i in range(len(arms)):
                    other[i] += cell[f"s{i}"] or 0.0
        if OTHER in values and other_n:
            put(f"{attribute}={OTHER}", {f"u{i}": other[i] / other_n for i in range(len(arms))})
    return ModelInsight(
        target_metric=champion.target_metric, segment_uplift=uplift, targeting=targeting,
        champion={"id": champion.id, "estimator": champion.estimator,
                  "url": reverse("admin:modelling_modelversion_change", args=[champion.id])})
