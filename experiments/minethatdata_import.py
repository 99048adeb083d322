"""Import of the public MineThatData (Kevin Hillstrom) e-mail campaign data.

64,000 customers who bought in the last twelve months were randomly sent a
men's e-mail, a women's e-mail or nothing; visits, conversions and spend in
the following two weeks were recorded. We load them as customers with CRM
attributes, a 3-arm experiment (No E-Mail = control) and outcome events.

The data carries no dates, so the campaign is placed at HILLSTROM_SENT_AT
and each outcome one day later, inside the 14-day attribution window.
Importing is all-or-nothing and idempotent: a second run adds nothing.
"""

from __future__ import annotations

import csv
import gzip
import io
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from django.core.exceptions import ValidationError
from django.db import transaction

from core.db.bulk import rows_insert
from experiments.models import Arm, Assignment, Experiment, Metric
from experiments.services import ArmSpec, MetricSpec, experiment_create
from marketing.attribute_history import customer_versions_open
from marketing.models import Campaign, Customer, CustomerAttribute, Event

HILLSTROM_SENT_AT = datetime(2008, 3, 3, 9, 0, tzinfo=UTC)
EXPERIMENT_KEY = "hillstrom"
CAMPAIGN_KEY = "hillstrom_email"
SOURCE = "hillstrom"
CONTROL = "No E-Mail"
ARMS = (CONTROL, "Mens E-Mail", "Womens E-Mail")
COLUMNS = ["recency", "history_segment", "history", "mens", "womens", "zip_code",
           "newbie", "channel", "segment", "visit", "conversion", "spend"]
ATTRIBUTES = {
    "recency": CustomerAttribute.Kind.NUMERIC,
    "history_segment": CustomerAttribute.Kind.CATEGORICAL,
    "history": CustomerAttribute.Kind.NUMERIC,
    "mens": CustomerAttribute.Kind.BOOLEAN,
    "womens": CustomerAttribute.Kind.BOOLEAN,
    "zip_code": CustomerAttribute.Kind.CATEGORICAL,
    "newbie": CustomerAttribute.Kind.BOOLEAN,
    "channel": CustomerAttribute.Kind.CATEGORICAL,
}


@dataclass(frozen=True)
class HillstromRow:
    line: int
    attributes: dict
    arm: str
    visit: bool
    conversion: bool
    spend: float


@dataclass(frozen=True)
class HillstromImportResult:
    rows: int
    customers_created: int
    assignments_created: int
    events_created: int


def _flag(raw: str, column: str) -> bool:
    if raw not in {"0", "1"}:
        raise ValueError(f"{column} must be 0 or 1, got {raw!r}")
    return raw == "1"


def _number(raw: str, column: str, *, minimum: float = 0.0) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{column} must be a number, got {raw!r}") from None
    if not value >= minimum:
        raise ValueError(f"{column} must be >= {minimum}, got {raw!r}")
    return value


def hillstrom_parse(path: Path) -> list[HillstromRow]:
    """Parse and validate every row; ValidationError lists each bad line."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as raw:
        reader = csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8", newline=""))
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValidationError({"header": f"missing columns {missing}"})
        rows, errors = [], []
        for line, record in enumerate(reader, start=2):
            try:
                if record["segment"] not in ARMS:
                    raise ValueError(f"segment must be one of {list(ARMS)}, got {record['segment']!r}")
                rows.append(HillstromRow(
                    line=line,
                    attributes={
                        "recency": _number(record["recency"], "recency"),
                        "history_segment": record["history_segment"],
                        "history": _number(record["history"], "history"),
                        "mens": _flag(record["mens"], "mens"),
                        "womens": _flag(record["womens"], "womens"),
                        "zip_code": record["zip_code"],
                        "newbie": _flag(record["newbie"], "newbie"),
                        "channel": record["channel"],
                    },
                    arm=record["segment"],
                    visit=_flag(record["visit"], "visit"),
                    conversion=_flag(record["conversion"], "conversion"),
                    spend=_number(record["spend"], "spend"),
                ))
            except ValueError as exc:
                errors.append(f"line {line}: {exc}")
    if errors:
        shown = errors[:20] + ([f"... and {len(errors) - 20} more"] if len(errors) > 20 else [])
        raise ValidationError({"rows": shown})
    return rows


def _experiment() -> Experiment:
    existing = Experiment.objects.filter(key=EXPERIMENT_KEY).first()
    if existing:
        return existing
    campaign, _ = Campaign.objects.get_or_create(
        key=CAMPAIGN_KEY,
        defaults={"name": "Hillstrom e-mail campaign", "channel": Campaign.Channel.EMAIL,
                  "cost_per_contact": "0.10", "value_per_conversion": "20.00",
                  "status": Campaign.Status.COMPLETED},
    )
    experiment = experiment_create(
        campaign=campaign, key=EXPERIMENT_KEY, name="Hillstrom e-mail test",
        hypothesis="A merchandise e-mail lifts visits, conversions and spend over two weeks.",
        arms=[ArmSpec(CONTROL, 1.0, is_control=True, contacts_customer=False),
              ArmSpec("Mens E-Mail", 1.0), ArmSpec("Womens E-Mail", 1.0)],
        metrics=[MetricSpec("visit", Event.Kind.VISIT, Metric.Aggregation.CONVERTED,
                             role=Metric.Role.PRIMARY),
                 MetricSpec("conversion", Event.Kind.PURCHASE, Metric.Aggregation.CONVERTED),
                 MetricSpec("spend", Event.Kind.PURCHASE, Metric.Aggregation.SUM)],
        attribution_window_days=14, salt="hillstrom",
    )
    # A finished historical test: record it as run and stopped at fixed dates.
    Experiment.objects.filter(pk=experiment.pk).update(
        status=Experiment.Status.STOPPED, started_at=HILLSTROM_SENT_AT,
        ended_at=HILLSTROM_SENT_AT + timedelta(days=14),
    )
    experiment.refresh_from_db()
    return experiment


@transaction.atomic
def hillstrom_import(path: Path) -> HillstromImportResult:
    rows = hillstrom_parse(path)
    for key, kind in ATTRIBUTES.items():
        CustomerAttribute.objects.get_or_create(key=key, defaults={"kind": kind, "label": key})
    experiment = _experiment()
    arms = dict(Arm.objects.filter(experiment=experiment).values_list("name", "id"))

    def external_id(row: HillstromRow) -> str:
        return f"hillstrom-{row.line - 1}"

    existing = set(Customer.objects.filter(external_id__startswith="hillstrom-")
                   .values_list("external_id", flat=True))
    now = datetime.now(UTC)
    customers_created = rows_insert(
        Customer, ["external_id", "attributes", "marketing_consent", "created_at", "updated_at"],
        ((external_id(r), r.attributes, True, now, now) for r in rows
         if external_id(r) not in existing),
    )
    ids = dict(Customer.objects.filter(external_id__startswith="hillstrom-")
               .values_list("external_id", "id"))
    # The file describes each customer as of the mailing; their first version
    # also stands for that earlier time (see CustomerAttributeVersion).
    customer_versions_open(((ids[external_id(r)], r.attributes, True) for r in rows
                            if external_id(r) not in existing), at=now, first=True)
    assigned = set(Assignment.objects.filter(experiment=experiment)
                   .values_list("customer_id", flat=True))
    assignments_created = rows_insert(
        Assignment, ["experiment_id", "customer_id", "arm_id", "assigned_at"],
        ((experiment.id, ids[external_id(r)], arms[r.arm], HILLSTROM_SENT_AT) for r in rows
         if ids[external_id(r)] not in assigned),
    )
    keys = set(Event.objects.filter(source=SOURCE).values_list("idempotency_key", flat=True))
    visit_at = HILLSTROM_SENT_AT + timedelta(days=1)
    purchase_at = visit_at + timedelta(hours=1)

    def events():
        for r in rows:
            cid, n = ids[external_id(r)], r.line - 1
            if r.visit and f"{n}:visit" not in keys:
                yield (cid, Event.Kind.VISIT, visit_at, 0.0, {}, SOURCE, f"{n}:visit", now)
            if r.conversion and f"{n}:purchase" not in keys:
                yield (cid, Event.Kind.PURCHASE, purchase_at, r.spend, {}, SOURCE,
                       f"{n}:purchase", now)

    events_created = rows_insert(
        Event, ["customer_id", "kind", "occurred_at", "value", "properties", "source",
                "idempotency_key", "received_at"],
        events(),
    )
    return HillstromImportResult(len(rows), customers_created, assignments_created,
                                 events_created)
