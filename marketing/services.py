"""Writes for the marketing app. Admin, API, commands and tasks all call these."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from core.bounds import (
    AMOUNT_MAX,
    ATTRIBUTE_NUMBER_MAX,
    COUNT_MAX,
    number_in_range,
    range_text,
)
from core.db.bulk import rows_insert
from core.db.lookups import values_matching
from core.pseudonyms import idempotency_key_pseudonym
from marketing.attribute_history import (
    customer_versions_copy,
    customer_versions_open,
    customer_versions_record,
)
from marketing.consent import (
    consent_changes_apply,
    consent_history_start,
    customers_lock,
)
from marketing.crm_ids import crm_ids_lookup
from marketing.models import Campaign, Customer, CustomerAttribute, Event, Segment
from marketing.segment_rules import segment_rule_validate


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
            # Bounded (core.bounds): 1e308 is finite, and a feature built from it is not.
            if number_in_range(value, -ATTRIBUTE_NUMBER_MAX, ATTRIBUTE_NUMBER_MAX) is None:
                errors[f"attributes.{key}"] = (
                    f"must be {range_text(-ATTRIBUTE_NUMBER_MAX, ATTRIBUTE_NUMBER_MAX)}")
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


@transaction.atomic
def customer_save(*, customer: Customer) -> Customer:
    """Validate and save one customer, recording a version when its attributes or consent changed.

    The single-row door (the demo's and tests' factories); many rows go
    through ``customers_upsert_bulk``. See marketing.attribute_history.
    """
    customer.full_clean()
    stored = None
    if customer.pk is not None:
        stored = (Customer.objects.select_for_update().filter(pk=customer.pk)
                  .values_list("attributes", "marketing_consent").first())
    customer.save()
    state = (customer.pk, customer.attributes, customer.marketing_consent)
    if stored is None:
        customer_versions_open([state], at=customer.created_at, first=True)
    elif stored != (customer.attributes, customer.marketing_consent):
        customer_versions_record([state], at=customer.updated_at)
    return customer


@dataclass
class EventRecordResult:
    created: int = 0
    duplicates: int = 0
    rejected: list[dict] = field(default_factory=list)


# Column order of the rows events_validate produces and events_write inserts.
EVENT_COLUMNS = ("customer_id", "kind", "occurred_at", "value", "properties", "source",
                 "idempotency_key", "received_at")
_EVENT_FIELDS = frozenset({"customer", "kind", "occurred_at", "value", "properties",
                           "idempotency_key"})
_EVENT_KINDS = frozenset(Event.Kind.values)
_KEY_MAX = Event._meta.get_field("idempotency_key").max_length
_SOURCE_MAX = Event._meta.get_field("source").max_length
_WRITE_ATTEMPTS = 3  # optimistic write, then with a fresh read of stored keys, twice


def aware_datetime(value: object) -> datetime | None:
    """An aware datetime from a datetime or an ISO 8601 string with an offset, else None.

    Values that overflow once converted to UTC (the first and last day of
    the calendar with an offset) are refused too.
    """
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    if not isinstance(value, datetime) or value.utcoffset() is None:
        return None
    try:
        value.astimezone(UTC)
    except OverflowError:
        return None
    return value


def _finite_number(value: object) -> float | None:
    if type(value) is float:  # the common case, first: 10,000 rows a request
        return value if math.isfinite(value) else None
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _text_ok(value: object, max_length: int) -> bool:
    return isinstance(value, str) and 0 < len(value) <= max_length and "\x00" not in value


def _customers_by_external_id(external_ids: Iterable[object]) -> dict[str, tuple[int, bool]]:
    """{external id: (customer id, erased)} for the ids that exist."""
    return {
        external_id: (pk, erased_at is not None)
        for external_id, (pk, erased_at) in crm_ids_lookup(
            Customer.objects.values_list("external_id", "id", "erased_at"), external_ids).items()
    }


def events_validate(rows: Sequence[object], *, source: str) -> tuple[list[tuple], list[dict]]:
    """Check every row; return (rows ready for events_write, rejected rows).

    Each row: ``customer`` (external id), ``kind``, ``occurred_at`` (aware
    datetime or ISO 8601 string with an offset), optional ``value`` (finite
    number), ``properties`` (object), ``idempotency_key`` (string, unique per
    source; stored as its keyed pseudonym, core.pseudonyms). A rejected row is
    ``{"index": i, "errors": {field: message}}``. Events of an erased customer
    keep no properties.
    """
    if not _text_ok(source, _SOURCE_MAX):
        raise ValidationError({"source": f"must be a non-empty string of at most {_SOURCE_MAX} "
                                         "characters"})
    customers = _customers_by_external_id(
        row.get("customer") for row in rows if isinstance(row, Mapping))
    received_at = timezone.now()
    ready: list[tuple] = []
    rejected: list[dict] = []
    seen_keys: set[str] = set()
    for index, row in enumerate(rows):
        if type(row) is not dict and not isinstance(row, Mapping):
            rejected.append({"index": index, "errors": {"non_field_errors": "must be an object"}})
            continue
        errors: dict[str, str] = {}
        if not _EVENT_FIELDS.issuperset(row):
            for name in row.keys() - _EVENT_FIELDS:
                errors[str(name)] = "is not an event field"
        external_id = row.get("customer")
        customer = customers.get(external_id) if isinstance(external_id, str) else None
        if customer is None:
            errors["customer"] = f"no customer with external_id {external_id!r}"
        kind = row.get("kind")
        if not isinstance(kind, str) or kind not in _EVENT_KINDS:
            errors["kind"] = f"must be one of {sorted(_EVENT_KINDS)}"
        occurred_at = aware_datetime(row.get("occurred_at"))
        if occurred_at is None:
            errors["occurred_at"] = "must be a timezone-aware datetime (ISO 8601 with offset)"
        value = _finite_number(row.get("value", 0.0))
        if value is None or not -AMOUNT_MAX <= value <= AMOUNT_MAX:
            # Bounded (core.bounds): two values of 1.7e308 overflow any sum of them.
            errors["value"] = f"must be {range_text(-AMOUNT_MAX, AMOUNT_MAX)}"
        properties = row.get("properties")
        if properties is None:
            properties = {}
        elif type(properties) is not dict and not isinstance(properties, Mapping):
            errors["properties"] = "must be an object"
        key = row.get("idempotency_key")
        if key is not None:
            if not _text_ok(key, _KEY_MAX):
                errors["idempotency_key"] = f"must be a non-empty string of at most {_KEY_MAX} characters"
            elif key in seen_keys:
                errors["idempotency_key"] = "repeated within this request"
            else:
                seen_keys.add(key)
        if errors:
            rejected.append({"index": index, "errors": errors})
        elif not rejected:  # once a row failed nothing is written: stop building
            if customer[1]:
                properties = {}
            if key is not None:
                key = idempotency_key_pseudonym(key)
            ready.append((customer[0], kind, occurred_at, value, properties, source, key,
                          received_at))
    return ([] if rejected else ready), rejected


def events_write(events: Sequence[tuple], *, source: str) -> EventRecordResult:
    """Insert validated events, skipping those whose (source, key) is stored.

    Optimistic: the whole batch goes in with one COPY (core.db.bulk), the
    common case of new events costing no read. If a key is already stored (a
    retried delivery, or a concurrent request) the unique constraint fails
    the batch, which is rolled back; the stored keys are then read and the
    rest written. So a key is never counted twice, and a retry of a large
    batch costs one failed COPY more than the first delivery.
    """
    keys = [e[6] for e in events if e[6] is not None]
    existing: set[str] = set()
    for attempt in range(_WRITE_ATTEMPTS):
        if attempt:
            existing = set(values_matching(
                Event.objects.filter(source=source).values_list("idempotency_key", flat=True),
                "idempotency_key", keys))
        fresh = [e for e in events if e[6] is None or e[6] not in existing] if existing else events
        try:
            with transaction.atomic():
                rows_insert(Event, EVENT_COLUMNS, fresh)
        except IntegrityError:
            if attempt == _WRITE_ATTEMPTS - 1:
                raise
            continue
        return EventRecordResult(created=len(fresh), duplicates=len(events) - len(fresh))
    raise AssertionError("unreachable")


def events_record(rows: Iterable[Mapping], *, source: str = "api") -> EventRecordResult:
    """Record behavioural events idempotently, all or nothing.

    Rows as in events_validate. If any row is invalid nothing is written and
    every rejected row is reported with its index; rows whose (source,
    idempotency key) exists are skipped and counted as duplicates.
    """
    events, rejected = events_validate(rows if isinstance(rows, Sequence) else list(rows),
                                       source=source)
    if rejected:
        return EventRecordResult(rejected=rejected)
    return events_write(events, source=source)


def segment_create(*, key: str, name: str, rule: dict, description: str = "") -> Segment:
    segment_rule_validate(rule)
    segment = Segment(key=key, name=name, rule=rule, description=description)
    segment.full_clean()
    segment.save()
    return segment


def campaign_harm_clean(field_name: str, values: object) -> dict[str, float]:
    """A guardrail-economics mapping checked: event kind -> non-negative finite number.

    ``harm_prices`` (money per extra event, at most AMOUNT_MAX) and
    ``harm_caps`` (most extra events a list may be expected to cause, at most
    COUNT_MAX) both have this shape; unknown event kinds and negative,
    out-of-range or non-numeric values are refused
    with a message naming the field and the kind.
    """
    if values is None:
        return {}
    if not isinstance(values, Mapping):
        raise ValidationError({field_name: "must be an object of event kind -> number"})
    known = set(Event.Kind.values)
    high = COUNT_MAX if field_name == "harm_caps" else AMOUNT_MAX  # events / money per event
    cleaned = {}
    for kind, value in values.items():
        if kind not in known:
            raise ValidationError({field_name: f"unknown event kind {kind!r}; "
                                               f"known: {sorted(known)}"})
        number = number_in_range(value, 0.0, high)
        if number is None:
            raise ValidationError({field_name: f"{kind}: must be {range_text(0.0, high)}"})
        cleaned[str(kind)] = number
    return cleaned


def campaign_create(
    *, key: str, name: str, channel: str, cost_per_contact: Decimal | float | str,
    value_per_conversion: Decimal | float | str, budget: Decimal | float | str | None = None,
    harm_prices: Mapping[str, float] | None = None, harm_caps: Mapping[str, float] | None = None,
    owner=None,
) -> Campaign:
    campaign = Campaign(
        key=key, name=name, channel=channel,
        cost_per_contact=Decimal(str(cost_per_contact)),
        value_per_conversion=Decimal(str(value_per_conversion)),
        budget=None if budget is None else Decimal(str(budget)), owner=owner,
        harm_prices=campaign_harm_clean("harm_prices", harm_prices),
        harm_caps=campaign_harm_clean("harm_caps", harm_caps),
    )
    campaign.full_clean()
    campaign.save()
    return campaign


_CAMPAIGN_EDITABLE = frozenset({"name", "channel", "status", "cost_per_contact",
                                "value_per_conversion", "budget", "harm_prices", "harm_caps"})


def campaign_update(*, campaign: Campaign, **changes) -> Campaign:
    """Change a campaign's editable fields (economics, guardrail prices and caps, status)."""
    unknown = set(changes) - _CAMPAIGN_EDITABLE
    if unknown:
        raise ValidationError({sorted(unknown)[0]: "cannot be changed"})
    for name in ("harm_prices", "harm_caps"):
        if name in changes:
            changes[name] = campaign_harm_clean(name, changes[name])
    for name in ("cost_per_contact", "value_per_conversion", "budget"):
        if changes.get(name) is not None:
            changes[name] = Decimal(str(changes[name]))
    for name, value in changes.items():
        setattr(campaign, name, value)
    campaign.full_clean()
    campaign.save(update_fields=list(changes) or None)
    return campaign


# --- Customers in bulk -----------------------------------------------------

CUSTOMER_FIELDS = frozenset({"external_id", "attributes", "marketing_consent",
                             "marketing_consent_at"})
_EXTERNAL_ID_MAX = Customer._meta.get_field("external_id").max_length


@dataclass
class CustomerBulkResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[dict] = field(default_factory=list)


def customers_upsert_bulk(rows: Sequence[object], *, source: str = "") -> CustomerBulkResult:
    """Create or update many customers by CRM id, all or nothing.

    Each row: ``external_id``, optional ``attributes`` (merged into the
    stored ones, validated by customer_attributes_clean) and
    ``marketing_consent`` with, optionally, ``marketing_consent_at`` (when
    the customer decided; consent is applied in that order, see
    marketing.consent, whose history names ``source``). If any row is
    invalid nothing is written and every
    rejected row is reported with its index. An erased customer accepts no
    personal attribute again. Costs a few queries per 5,000 rows: new
    customers go in with one COPY (core.db.bulk), changed ones with one
    UPDATE per batch that merges in the database (customer_attributes_merge:
    concurrent upserts lose no key); rows that change nothing are not written. The
    attribute history (marketing.attribute_history) is written alongside:
    a first version per new customer and, per changed one, the previous
    version closed (one UPDATE for all) and a new one opened, copied from
    the rows just written (one INSERT ... SELECT for all).
    """
    definitions = {a.key: a for a in CustomerAttribute.objects.all()}
    personal = {k for k, a in definitions.items() if a.is_personal}
    for attempt in range(_WRITE_ATTEMPTS):
        stored = _customers_stored(
            row.get("external_id") for row in rows if isinstance(row, Mapping))
        result = CustomerBulkResult()
        erased_when_read = {pk for pk, _, _, erased in stored.values() if erased}
        now = timezone.now()
        inserts, updates, consents = _customer_rows_check(rows, stored, definitions, personal,
                                                          result, now)
        if result.rejected:
            return result
        try:
            with transaction.atomic():
                rows_insert(Customer, ["external_id", "attributes", "marketing_consent",
                                       "consent_changed_at", "created_at", "updated_at"],
                            [(e, a, c, at, now, now) for e, a, c, at in inserts])
                locked = customers_lock([pk for pk, _ in updates] + [w[0] for w in consents])
                if any(locked[pk][2] and pk not in erased_when_read for pk in locked):
                    # Erased since the read: the attributes to merge may hold personal
                    # data erasure removed. Read again (the erased row refuses it).
                    raise _ErasedMeanwhile
                changed = customer_attributes_merge(updates, now)
                consent_changed = consent_changes_apply(consents, locked, source=source, now=now)
                consent_history_start([e for e, _, _, at in inserts if at is not None],
                                      source=source, now=now)
                customer_versions_copy(
                    created=[e for e, _, _, _ in inserts],
                    changed=sorted(set(changed) | set(consent_changed)), at=now)
        except (IntegrityError, _ErasedMeanwhile):
            # Another request created one of these customers meanwhile:
            # read again, and the row becomes an update.
            if attempt == _WRITE_ATTEMPTS - 1:
                raise
            continue
        # Rows another request had already brought to these values count as unchanged.
        written = set(changed) | set(consent_changed)
        result.created, result.updated = len(inserts), len(written)
        result.unchanged += len(({pk for pk, _ in updates} | {w[0] for w in consents}) - written)
        return result
    raise AssertionError("unreachable")


class _ErasedMeanwhile(Exception):
    """A customer of the batch was erased between its read and its write."""


def _customers_stored(external_ids: Iterable[object]) -> dict[str, tuple[int, dict, bool, bool]]:
    """{external id: (id, attributes, consent, erased)} for the ids that exist (erased ones too)."""
    columns = ("external_id", "id", "attributes", "marketing_consent", "erased_at")
    return {
        external_id: (pk, attributes, consent, erased_at is not None)
        for external_id, (pk, attributes, consent, erased_at) in crm_ids_lookup(
            Customer.objects.values_list(*columns), external_ids).items()
    }


def _customer_rows_check(rows, stored, definitions, personal, result, now):
    """Rows -> (inserts (external id, attributes, consent, consent time or None),
    attribute merges (id, attributes to set), consent writes (id, consent, decided_at))."""
    inserts: list[tuple] = []
    updates: list[tuple] = []
    consents: list[tuple] = []
    seen: set[str] = set()
    for index, row in enumerate(rows):
        if not isinstance(row, Mapping):
            result.rejected.append({"index": index, "errors": {"non_field_errors": "must be an object"}})
            continue
        errors: dict[str, str] = {str(k): "is not a customer field" for k in row.keys() - CUSTOMER_FIELDS}
        external_id = row.get("external_id")
        if not _text_ok(external_id, _EXTERNAL_ID_MAX):
            errors["external_id"] = (f"must be a non-empty string of at most {_EXTERNAL_ID_MAX} "
                                     "characters")
            external_id = None
        elif external_id in seen:
            errors["external_id"] = "repeated within this request"
        else:
            seen.add(external_id)
        current = stored.get(external_id) if external_id else None
        consent = row.get("marketing_consent")
        if consent is not None and not isinstance(consent, bool):
            errors["marketing_consent"] = "must be true or false"
        decided_at = now
        if row.get("marketing_consent_at") is not None:
            decided_at = aware_datetime(row["marketing_consent_at"])
            if decided_at is None:
                errors["marketing_consent_at"] = ("must be a timezone-aware datetime "
                                                  "(ISO 8601 with offset)")
            elif consent is None:
                errors["marketing_consent_at"] = "is only accepted with marketing_consent"
        attributes = row.get("attributes")
        try:
            clean = customer_attributes_clean(
                {} if attributes is None else attributes, definitions=definitions,
                partial=current is not None)
        except ValidationError as exc:
            errors.update({k: "; ".join(v) for k, v in exc.message_dict.items()})
            clean = {}
        if current is not None and current[3] and personal & clean.keys():
            errors["attributes"] = ("the customer's personal data was erased; personal attributes "
                                    f"{sorted(personal & clean.keys())} are not accepted")
        if current is not None and current[3] and consent:
            errors["marketing_consent"] = "the customer's personal data was erased; consent is false"
        if errors:
            result.rejected.append({"index": index, "errors": errors})
            continue
        if current is None:
            inserts.append((external_id, clean, bool(consent),
                            None if consent is None else decided_at))
            continue
        pk, stored_attributes, _, _ = current
        # Consent is compared and written under the row lock (marketing.consent),
        # never from this read: a withdrawal committed meanwhile must stand.
        if consent is not None:
            consents.append((pk, consent, decided_at))
        if not all(k in stored_attributes and stored_attributes[k] == v for k, v in clean.items()):
            updates.append((pk, clean))  # as read: customer_attributes_merge decides
        elif consent is None:
            result.unchanged += 1
    return inserts, updates, consents


def customer_attributes_merge(updates: Sequence[tuple[int, dict]], now: datetime) -> list[int]:
    """Merge attributes of existing customers in the database; the changed ids.

    ``updates``: (customer id, attributes to set). The merge happens inside
    the UPDATE (PostgreSQL ``attributes || delta``, SQLite ``json_patch``),
    never as a read in Python and a write of the whole object: concurrent
    upserts that set different keys of one customer all keep their keys,
    since each UPDATE waits for the row lock of the one before and merges
    into what it committed. A row whose attributes already hold the values
    is not written, and its id is not returned, so the history gets a
    version only for a real change. Consent is not written here: it changes
    only in the order it was decided (marketing.consent).
    """
    if not updates:
        return []
    table = connection.ops.quote_name(Customer._meta.db_table)
    changed: list[int] = []
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # One statement per batch instead of one per customer.
            for start in range(0, len(updates), 5_000):
                batch = updates[start:start + 5_000]
                cursor.execute(
                    f"UPDATE {table} AS c SET attributes = c.attributes || v.attributes::jsonb, "
                    "updated_at = %s "
                    "FROM unnest(%s::bigint[], %s::text[]) AS v(id, attributes) "
                    "WHERE c.id = v.id AND NOT c.attributes @> v.attributes::jsonb "
                    "RETURNING c.id",
                    [now, [u[0] for u in batch], [json.dumps(u[1]) for u in batch]],
                )
                changed += [pk for (pk,) in cursor.fetchall()]
        else:
            # SQLite runs one writer at a time; one statement per customer is cheap there.
            updated_at = Customer._meta.get_field("updated_at").get_db_prep_save(now, connection)
            for pk, attributes in updates:
                cursor.execute(
                    f"UPDATE {table} SET attributes = json_patch(attributes, %s), updated_at = %s "
                    "WHERE id = %s AND json_patch(attributes, %s) != json(attributes) "
                    "RETURNING id",
                    [json.dumps(attributes), updated_at, pk, json.dumps(attributes)])
                changed += [row[0] for row in cursor.fetchall()]
    return changed
