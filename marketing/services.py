"""Writes for the marketing app. Admin, API, commands and tasks all call these."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from experiments.task_runs import task_run_queue
from marketing.models import Campaign, Customer, CustomerAttribute, Event, Segment
from marketing.segment_rules import segment_rule_validate
from marketing.tasks import segment_size


def customer_attributes_clean(
    attributes: Mapping[str, object],
    *,
    definitions: Mapping[str, CustomerAttribute] | None = None,
    partial: bool = False,
) -> dict:
    """Validate attribute values against the declared definitions.

    Raises ValidationError keyed ``attributes.<key>``. Integers are accepted
    for numeric attributes; ``partial`` skips the required check (updates).
    """
    if definitions is None:
        definitions = {a.key: a for a in CustomerAttribute.objects.all()}
    if not isinstance(attributes, Mapping):
        raise ValidationError({"attributes": "must be an object of attribute values"})
    errors: dict[str, str] = {}
    clean: dict[str, object] = {}
    for key, value in attributes.items():
        definition = definitions.get(key)
        if definition is None:
            errors[f"attributes.{key}"] = "is not a declared customer attribute"
            continue
        if value is None:
            continue
        kind = definition.kind
        if kind == CustomerAttribute.Kind.NUMERIC:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not ok or not math.isfinite(value):
                errors[f"attributes.{key}"] = "must be a finite number"
                continue
        elif kind == CustomerAttribute.Kind.BOOLEAN:
            if not isinstance(value, bool):
                errors[f"attributes.{key}"] = "must be true or false"
                continue
        else:
            if not isinstance(value, str):
                errors[f"attributes.{key}"] = "must be a string"
                continue
            if definition.choices and value not in definition.choices:
                errors[f"attributes.{key}"] = f"must be one of {definition.choices}"
                continue
        clean[key] = value
    if not partial:
        for key, definition in definitions.items():
            if definition.required and key not in clean:
                errors[f"attributes.{key}"] = "is required"
    if errors:
        raise ValidationError(errors)
    return clean


def customer_upsert(
    *, external_id: str, attributes: Mapping[str, object] | None = None,
    marketing_consent: bool | None = None,
) -> tuple[Customer, bool]:
    """Create or update a customer by CRM id; attributes merge into stored ones."""
    customer = Customer.objects.filter(external_id=external_id).first()
    created = customer is None
    clean = customer_attributes_clean(attributes or {}, partial=not created)
    if created:
        customer = Customer(external_id=external_id, attributes=clean)
    else:
        customer.attributes = {**customer.attributes, **clean}
    if marketing_consent is not None:
        customer.marketing_consent = marketing_consent
    customer.full_clean()
    customer.save()
    return customer, created


@dataclass
class EventRecordResult:
    created: int = 0
    duplicates: int = 0
    rejected: list[dict] = field(default_factory=list)


def events_record(rows: Iterable[Mapping], *, source: str = "api") -> EventRecordResult:
    """Record behavioural events idempotently, all or nothing.

    Each row: ``customer`` (external id), ``kind``, ``occurred_at`` (aware
    datetime), optional ``value``, ``properties``, ``idempotency_key``. If any
    row is invalid nothing is written and every rejected row is reported with
    its index; rows whose (source, idempotency key) exists are skipped.
    """
    rows = list(rows)
    external_ids = {r.get("customer") for r in rows}
    customers = dict(
        Customer.objects.filter(external_id__in=external_ids).values_list("external_id", "id")
    )
    result = EventRecordResult()
    events: list[Event] = []
    seen_keys: set[str] = set()
    for index, row in enumerate(rows):
        errors: dict[str, str] = {}
        customer_id = customers.get(row.get("customer"))
        if customer_id is None:
            errors["customer"] = f"no customer with external_id {row.get('customer')!r}"
        if row.get("kind") not in Event.Kind.values:
            errors["kind"] = f"must be one of {Event.Kind.values}"
        occurred_at = row.get("occurred_at")
        if not isinstance(occurred_at, datetime) or timezone.is_naive(occurred_at):
            errors["occurred_at"] = "must be a timezone-aware datetime"
        value = row.get("value", 0.0)
        if not isinstance(value, (int, float, Decimal)) or isinstance(value, bool) or not math.isfinite(float(value)):
            errors["value"] = "must be a finite number"
        key = row.get("idempotency_key")
        if key is not None:
            if key in seen_keys:
                errors["idempotency_key"] = "repeated within this request"
            seen_keys.add(key)
        if errors:
            result.rejected.append({"index": index, "errors": errors})
            continue
        events.append(Event(
            customer_id=customer_id, kind=row["kind"], occurred_at=occurred_at,
            value=float(value), properties=row.get("properties") or {},
            source=source, idempotency_key=key,
        ))
    if result.rejected:
        return result
    keys = [e.idempotency_key for e in events if e.idempotency_key is not None]
    existing = set(
        Event.objects.filter(source=source, idempotency_key__in=keys)
        .values_list("idempotency_key", flat=True)
    ) if keys else set()
    fresh = [e for e in events if e.idempotency_key is None or e.idempotency_key not in existing]
    with transaction.atomic():
        # ignore_conflicts covers a concurrent request delivering the same key.
        Event.objects.bulk_create(fresh, batch_size=2_000, ignore_conflicts=True)
    result.created = len(fresh)
    result.duplicates = len(events) - len(fresh)
    return result


def segment_create(*, key: str, name: str, rule: dict, description: str = "") -> Segment:
    segment_rule_validate(rule)
    segment = Segment(key=key, name=name, rule=rule, description=description)
    segment.full_clean()
    segment.save()
    return segment


def campaign_create(
    *, key: str, name: str, channel: str, cost_per_contact: Decimal | float | str,
    value_per_conversion: Decimal | float | str, budget: Decimal | float | str | None = None,
    owner=None,
) -> Campaign:
    campaign = Campaign(
        key=key, name=name, channel=channel,
        cost_per_contact=Decimal(str(cost_per_contact)),
        value_per_conversion=Decimal(str(value_per_conversion)),
        budget=None if budget is None else Decimal(str(budget)), owner=owner,
    )
    campaign.full_clean()
    campaign.save()
    return campaign


def segment_size_request(*, segment: Segment):
    """Queue a background count of the segment's members; returns the TaskRun."""
    return task_run_queue(name="segment_size", params={"segment_id": segment.id}, task=segment_size)
