"""Concurrent upserts of one customer that set different attributes keep every key.

The merge happens in the database (marketing.services.customer_attributes_merge),
so it needs real concurrent transactions: PostgreSQL (the `postgres` marker puts
the test in the PostgreSQL pass, `make test-postgres`).
"""

import threading

import pytest
from django.db import connection, connections

from marketing.models import Customer, CustomerAttribute, CustomerAttributeVersion
from tests.api.conftest import client_with_key
from tests.factories import customer_make
from tests.missing import missing

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

WRITERS = 8
ROUNDS = 5


@pytest.fixture
def numbered_attributes():
    if connection.vendor != "postgresql":
        missing("concurrent upserts need DATABASE_URL to point at PostgreSQL")
    for i in range(WRITERS * ROUNDS):
        CustomerAttribute.objects.create(key=f"a{i}", kind=CustomerAttribute.Kind.NUMERIC)


def run_together(requests) -> list:
    """Each callable in its own thread, all released at once; their results."""
    barrier = threading.Barrier(len(requests))
    results: list = [None] * len(requests)

    def worker(i):
        try:
            barrier.wait()
            results[i] = requests[i]()
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def assert_every_key_kept_with_history(external_id: str, keys: set[str]) -> None:
    customer = Customer.objects.get(external_id=external_id)
    assert keys <= customer.attributes.keys(), sorted(keys - customer.attributes.keys())
    # The history agrees: one current version, equal to the row.
    current = CustomerAttributeVersion.objects.get(customer=customer, valid_to__isnull=True)
    assert current.attributes == customer.attributes


@pytest.mark.parametrize("path", ["/api/v1/customers/", "/api/v1/customers/bulk/"])
def test_concurrent_upserts_of_different_attributes_lose_none(numbered_attributes, path):
    clients = [client_with_key("write") if i == 0 else None for i in range(WRITERS)]
    raw_client = clients[0]
    customer = customer_make()
    expected: set[str] = set()
    for round_ in range(ROUNDS):
        keys = [f"a{round_ * WRITERS + i}" for i in range(WRITERS)]
        expected |= set(keys)

        def upsert(key):
            row = {"external_id": customer.external_id, "attributes": {key: 1}}
            body = row if path.endswith("customers/") else {"customers": [row]}
            return raw_client.post(path, body, format="json").status_code

        statuses = run_together([lambda key=key: upsert(key) for key in keys])
        assert statuses == [200] * WRITERS
        assert_every_key_kept_with_history(customer.external_id, expected)


def test_concurrent_first_upserts_of_a_new_customer_keep_every_key(numbered_attributes):
    client = client_with_key("write")
    keys = [f"a{i}" for i in range(WRITERS)]

    def upsert(key):
        body = {"customers": [{"external_id": "new-one", "attributes": {key: 2}}]}
        return client.post("/api/v1/customers/bulk/", body, format="json").status_code

    assert run_together([lambda key=key: upsert(key) for key in keys]) == [200] * WRITERS
    assert_every_key_kept_with_history("new-one", set(keys))
