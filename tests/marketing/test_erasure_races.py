"""A sync that read a customer before their erasure committed writes nothing personal back."""

from __future__ import annotations

import pytest

import marketing.services as services
from marketing.models import Customer, CustomerAttribute
from marketing.privacy import customer_erase
from marketing.services import customers_upsert_bulk
from tests.factories import attributes_declare

pytestmark = pytest.mark.django_db


def test_a_sync_racing_an_erasure_is_read_again_and_brings_back_nothing(monkeypatch):
    attributes_declare()
    CustomerAttribute.objects.create(key="email", kind="categorical", is_personal=True)
    customers_upsert_bulk([{"external_id": "ann@x.test", "marketing_consent": True,
                            "attributes": {"age": 30, "email": "ann@x.test"}}])
    read = services._customers_stored

    def read_then_erasure_commits(external_ids):
        stored = read(external_ids)
        monkeypatch.setattr(services, "_customers_stored", read)
        customer_erase(customer=Customer.objects.get(external_id="ann@x.test"))
        return stored

    monkeypatch.setattr(services, "_customers_stored", read_then_erasure_commits)
    result = customers_upsert_bulk([{"external_id": "ann@x.test", "attributes": {"age": 31},
                                     "marketing_consent": True}])
    # Read again after the erasure: the consent is refused, nothing is written.
    assert result.rejected == [{"index": 0, "errors": {
        "marketing_consent": "the customer's personal data was erased; consent is false"}}]
    customer = Customer.objects.get()
    assert (customer.attributes, customer.marketing_consent) == ({"age": 30}, False)
    assert all("email" not in v.attributes for v in customer.attribute_versions.all())
