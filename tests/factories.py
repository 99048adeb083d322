"""Small builders for test data; each returns saved rows with sensible defaults."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from itertools import count

from experiments.models import Experiment, Metric
from experiments.services import ArmSpec, MetricSpec, experiment_create
from marketing.models import Campaign, Customer, CustomerAttribute, Event
from marketing.services import customer_save

_seq = count(1)


def attributes_declare() -> None:
    for key, kind, choices in [
        ("age", CustomerAttribute.Kind.NUMERIC, []),
        ("channel", CustomerAttribute.Kind.CATEGORICAL, ["web", "phone", "store"]),
        ("vip", CustomerAttribute.Kind.BOOLEAN, []),
    ]:
        CustomerAttribute.objects.get_or_create(key=key, defaults={"kind": kind, "choices": choices})


def customer_make(**attributes) -> Customer:
    consent = attributes.pop("consent", True)
    # Through the service, like every writer: the customer gets its first attribute version.
    return customer_save(customer=Customer(
        external_id=f"c{next(_seq)}", attributes=attributes, marketing_consent=consent))


def event_make(customer: Customer, kind: str, occurred_at: datetime, value: float = 0.0,
               **extra) -> Event:
    return Event.objects.create(customer=customer, kind=kind, occurred_at=occurred_at,
                                value=value, **extra)


def campaign_make(**overrides) -> Campaign:
    n = next(_seq)
    fields = {"key": f"campaign_{n}", "name": f"Campaign {n}", "channel": "email",
              "cost_per_contact": "0.50", "value_per_conversion": "40.00"}
    fields.update(overrides)
    return Campaign.objects.create(**fields)


def experiment_make(*, arms=None, layer: str = "", **overrides) -> Experiment:
    n = next(_seq)
    arms = arms or [ArmSpec("control", 1.0, is_control=True, contacts_customer=False),
                    ArmSpec("email", 1.0)]
    fields = dict(
        campaign=overrides.pop("campaign", None) or campaign_make(),
        key=f"experiment_{n}", name=f"Experiment {n}", arms=arms,
        metrics=[MetricSpec("purchase", Event.Kind.PURCHASE, Metric.Aggregation.CONVERTED,
                            role=Metric.Role.PRIMARY),
                 MetricSpec("revenue", Event.Kind.PURCHASE, Metric.Aggregation.SUM)],
        layer=layer,
    )
    fields.update(overrides)
    return experiment_create(**fields)


T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def folder_sha256(folder) -> str:
    """A model artifact's checksum computed independently: each file's relative path, then its bytes."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode() + path.read_bytes())
    return digest.hexdigest()
