"""A consent withdrawal racing attribute syncs is never lost (PostgreSQL, real threads).

Each trial: a customer with consent; eight threads start together, one
withdraws consent (no timestamp: it counts from its arrival), four sync
attributes only, three sync attributes with the consent the CRM had an
hour earlier. Whatever order the transactions commit in, consent ends false,
its history ends with the withdrawal, and the attribute history's current
version agrees with the customer row.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.utils import timezone

from marketing.models import Customer
from marketing.services import customers_upsert_bulk
from tests.factories import attributes_declare
from tests.missing import missing

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

THREADS = 8
TRIALS = 30


def test_no_withdrawal_is_lost_to_concurrent_syncs():
    if connection.vendor != "postgresql":
        missing("the consent race test needs DATABASE_URL to point at PostgreSQL")
    attributes_declare()
    lost = []
    for trial in range(TRIALS):
        external_id = f"race-{trial}"
        customers_upsert_bulk([{"external_id": external_id, "marketing_consent": True,
                                "attributes": {"age": 30}}], source="setup")
        earlier = (timezone.now() - timedelta(hours=1)).isoformat()
        rows = [{"external_id": external_id, "marketing_consent": False}]
        rows += [{"external_id": external_id, "attributes": {"age": 31 + i}} for i in range(4)]
        rows += [{"external_id": external_id, "attributes": {"age": 40 + i},
                  "marketing_consent": True, "marketing_consent_at": earlier} for i in range(3)]
        barrier = threading.Barrier(THREADS)
        errors = []

        def write(row, barrier=barrier, errors=errors):
            try:
                barrier.wait(timeout=30)
                result = customers_upsert_bulk([row], source="withdrawal" if row.get(
                    "marketing_consent") is False else "sync")
                assert not result.rejected, result.rejected
            except Exception as exc:  # reported below, with the trial
                errors.append(repr(exc))
            finally:
                connections.close_all()

        threads = [threading.Thread(target=write, args=(row,)) for row in rows]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert not errors, f"trial {trial}: {errors}"
        customer = Customer.objects.get(external_id=external_id)
        current = customer.attribute_versions.get(valid_to__isnull=True)
        last = customer.consent_changes.order_by("-decided_at", "-id").first()
        if customer.marketing_consent or last.consent or current.marketing_consent:
            lost.append(trial)
        assert current.attributes == customer.attributes
    assert lost == [], f"withdrawal lost in trials {lost} of {TRIALS}"
