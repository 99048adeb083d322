"""Consent changes are ordered, never undone by an attribute sync, and have a history."""

from __future__ import annotations

from datetime import timedelta

import pytest

import marketing.services as services
from marketing.models import ConsentChange, Customer
from marketing.privacy import customer_data_export
from marketing.services import customers_upsert_bulk
from tests.factories import T0, attributes_declare

pytestmark = pytest.mark.django_db


@pytest.fixture
def customer():
    attributes_declare()
    customers_upsert_bulk([{"external_id": "c1", "marketing_consent": True,
                            "marketing_consent_at": T0.isoformat(), "attributes": {"age": 30}}],
                          source="api-key:crm")
    return Customer.objects.get(external_id="c1")


def test_a_consent_decided_before_the_stored_one_is_not_applied(customer):
    withdrawn = T0 + timedelta(hours=2)
    customers_upsert_bulk([{"external_id": "c1", "marketing_consent": False,
                            "marketing_consent_at": withdrawn.isoformat()}],
                          source="user:anna")
    # Yesterday's CRM export arrives late, with the consent it had then.
    result = customers_upsert_bulk([{"external_id": "c1", "marketing_consent": True,
                                     "marketing_consent_at": (T0 + timedelta(hours=1)).isoformat(),
                                     "attributes": {"age": 31}}], source="api-key:crm")
    customer.refresh_from_db()
    assert (customer.marketing_consent, customer.consent_changed_at) == (False, withdrawn)
    assert customer.attributes["age"] == 31  # the attributes of the same row still apply
    assert result.updated == 1


def test_an_attribute_sync_that_read_before_a_withdrawal_does_not_undo_it(customer, monkeypatch):
    """The lost update of issue #20, replayed in one thread: the sync reads the
    customer (consent true), a withdrawal commits, then the sync writes."""
    read = services._customers_stored

    def read_then_withdrawal_commits(external_ids):
        stored = read(external_ids)
        monkeypatch.setattr(services, "_customers_stored", read)
        customers_upsert_bulk([{"external_id": "c1", "marketing_consent": False}],
                              source="unsubscribe-page")
        return stored

    monkeypatch.setattr(services, "_customers_stored", read_then_withdrawal_commits)
    customers_upsert_bulk([{"external_id": "c1", "attributes": {"age": 40}}], source="sync")
    customer.refresh_from_db()
    assert (customer.marketing_consent, customer.attributes["age"]) == (False, 40)
    assert customer.attribute_versions.get(valid_to__isnull=True).marketing_consent is False


def test_the_export_shows_when_and_from_where_consent_changed(customer):
    customers_upsert_bulk([{"external_id": "c1", "marketing_consent": False}], source="user:anna")
    customers_upsert_bulk([{"external_id": "c1", "marketing_consent": False}], source="user:bob")
    history = customer_data_export(customer=customer)["consent_history"]
    assert [(h["consent"], h["source"]) for h in history] == [
        (True, "api-key:crm"), (False, "user:anna")]  # a repeat of the same value is no change
    assert history[0]["decided_at"] == T0.isoformat()
    assert ConsentChange.objects.count() == 2


def test_a_consent_time_needs_the_consent_and_an_offset(customer):
    result = customers_upsert_bulk([
        {"external_id": "c1", "marketing_consent_at": T0.isoformat()},
        {"external_id": "c2", "marketing_consent": True, "marketing_consent_at": "2026-06-01"}])
    assert [r["errors"] for r in result.rejected] == [
        {"marketing_consent_at": "is only accepted with marketing_consent"},
        {"marketing_consent_at": "must be a timezone-aware datetime (ISO 8601 with offset)"}]
