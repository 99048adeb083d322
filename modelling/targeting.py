"""Target lists: scores + campaign economics -> whom to contact, and with what.

The one place that turns scores into a contact decision (models_dl.policy
does the arithmetic). Only customers with marketing consent who have not
been erased are eligible; an optional segment narrows the list further.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

import numpy as np
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from core.db.bulk import rows_insert
from marketing.models import Campaign, Segment
from marketing.segment_rules import segment_members
from modelling.models import CustomerScore, ModelVersion, TargetingEntry, TargetingList
from modelling.registry import champion
from models_dl.policy import targeting_select


@transaction.atomic
def targeting_list_create(
    *, campaign: Campaign, model_version: ModelVersion | None = None,
    budget: float | None = None, max_contacts: int | None = None,
    segment: Segment | None = None, cost_per_contact: float | None = None,
    value_per_conversion: float | None = None,
) -> TargetingList:
    """Build and store a list. Defaults: the campaign's champion and its economics."""
    version = model_version or champion(campaign.id, ModelVersion.Kind.UPLIFT)
    if version is None:
        raise ValidationError({"model_version": f"campaign {campaign.key} has no champion "
                                                "uplift model; train one first"})
    if version.campaign_id != campaign.id or version.kind != ModelVersion.Kind.UPLIFT:
        raise ValidationError({"model_version": "must be an uplift model of this campaign"})
    cost = float(campaign.cost_per_contact if cost_per_contact is None else cost_per_contact)
    value = float(campaign.value_per_conversion if value_per_conversion is None
                  else value_per_conversion)
    if budget is None and campaign.budget is not None:
        budget = float(campaign.budget)
    for name, number in (("budget", budget), ("cost_per_contact", cost),
                         ("value_per_conversion", value)):
        if number is not None and not (np.isfinite(number) and number >= 0):
            raise ValidationError({name: "must be a non-negative number"})
    if max_contacts is not None and max_contacts < 0:
        raise ValidationError({"max_contacts": "must be non-negative"})

    scores = CustomerScore.objects.filter(
        model_version=version, customer__marketing_consent=True, customer__erased_at__isnull=True,
        uplift__isnull=False)
    if segment is not None:
        scores = scores.filter(customer__in=segment_members(segment.rule,
                                                            as_of=timezone.now()).values("id"))
    rows = list(scores.order_by("customer_id").values_list("customer_id", "uplift", "best_arm")
                .iterator(chunk_size=50_000))
    customer_ids = np.array([r[0] for r in rows], dtype=np.int64)
    uplift = np.array([r[1] for r in rows], dtype=np.float64)
    decision = targeting_select(uplift, cost_per_contact=cost, value_per_conversion=value,
                                budget=budget, max_contacts=max_contacts)
    target = TargetingList.objects.create(
        campaign=campaign, model_version=version, segment=segment,
        parameters={"cost_per_contact": cost, "value_per_conversion": value, "budget": budget,
                    "max_contacts": max_contacts, "eligible": len(rows)},
        size=int(decision.order.size), total_cost=decision.total_cost,
        expected_profit=decision.total_expected_profit,
        expected_conversions=float(uplift[decision.order].sum()),
        profit_curve={"contacts": decision.curve_contacts.tolist(),
                      "profit": decision.curve_profit.tolist()},
    )
    rows_insert(
        TargetingEntry, ["targeting_list_id", "customer_id", "rank", "arm", "uplift",
                         "expected_profit"],
        ((target.id, int(customer_ids[i]), rank, rows[i][2], float(uplift[i]), float(p))
         for rank, (i, p) in enumerate(zip(decision.order.tolist(),
                                           decision.expected_profit.tolist(), strict=True),
                                       start=1)),
    )
    return target


CSV_COLUMNS = ["rank", "customer_external_id", "arm", "predicted_uplift", "expected_profit"]


def targeting_list_csv(target: TargetingList, *, chunk_size: int = 10_000) -> Iterator[str]:
    """CSV lines (header first), streamed in chunks so large lists never sit in memory."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    yield buffer.getvalue()
    entries = (TargetingEntry.objects.filter(targeting_list=target).order_by("rank")
               .values_list("rank", "customer__external_id", "arm", "uplift", "expected_profit"))
    for row in entries.iterator(chunk_size=chunk_size):
        buffer.seek(0)
        buffer.truncate()
        writer.writerow([row[0], row[1], row[2], f"{row[3]:.6f}", f"{row[4]:.4f}"])
        yield buffer.getvalue()
