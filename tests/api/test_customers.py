"""Customers: upsert one or 10,000, read, list with filters and cursors."""

from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone

from marketing import services
from marketing.models import Customer, CustomerAttribute
from tests.api.conftest import rows_of

pytestmark = pytest.mark.django_db


def test_it_creates_then_merges_attributes(api):
    first = api.post("/api/v1/customers/", {"external_id": "c1", "attributes": {"age": 30},
                                            "marketing_consent": True}, format="json")
    assert first.status_code == 201
    second = api.post("/api/v1/customers/", {"external_id": "c1",
                                             "attributes": {"channel": "web"}}, format="json")
    assert second.status_code == 200
    assert second.json()["attributes"] == {"age": 30, "channel": "web"}
    # Consent left out of an update keeps the stored value.
    assert second.json()["marketing_consent"] is True


@pytest.mark.parametrize("payload, field", [
    ({"external_id": "c1", "attributes": {"age": "old"}}, "attributes.age"),
    ({"external_id": "c1", "attributes": {"shoe_size": 9}}, "attributes.shoe_size"),
    ({"external_id": "c1", "attributes": [1]}, "attributes"),
    ({"external_id": "", "attributes": {}}, "external_id"),
    ({"external_id": "x" * 129}, "external_id"),
    ({"attributes": {}}, "external_id"),
    ({"external_id": "c1", "marketing_consent": "perhaps"}, "marketing_consent"),
])
def test_it_rejects_a_bad_customer_naming_the_field(api, payload, field):
    response = api.post("/api/v1/customers/", payload, format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert not Customer.objects.exists()


def test_it_reads_one_customer_or_404s(api):
    api.post("/api/v1/customers/", {"external_id": "crm 7"}, format="json")
    assert api.get("/api/v1/customers/crm 7/").json()["external_id"] == "crm 7"
    assert api.get("/api/v1/customers/nobody/").status_code == 404


def test_bulk_upserts_ten_thousand_customers_in_a_few_queries(api, django_assert_max_num_queries):
    Customer.objects.create(external_id="c0", attributes={"age": 20})
    rows = [{"external_id": f"c{i}", "attributes": {"age": i % 90, "channel": "web"},
             "marketing_consent": i % 2 == 0} for i in range(10_000)]
    # Authentication, attributes, the stored customers by CRM id and by erased
    # pseudonym (2 + 2 chunks on SQLite), the write, the consent row lock,
    # its write and its history (updated and created customers).
    with django_assert_max_num_queries(18):
        response = api.post("/api/v1/customers/bulk/", {"customers": rows}, format="json")
    assert response.status_code == 200, response.content
    assert response.json() == {"created": 9_999, "updated": 1, "unchanged": 0}
    assert Customer.objects.count() == 10_000
    c0 = Customer.objects.get(external_id="c0")
    assert (c0.attributes, c0.marketing_consent) == ({"age": 0, "channel": "web"}, True)
    assert Customer.objects.get(external_id="c9999").attributes == {"age": 9, "channel": "web"}


def test_bulk_reports_unchanged_rows_and_writes_nothing_for_them(api):
    rows = [{"external_id": f"c{i}", "attributes": {"age": i}} for i in range(3)]
    api.post("/api/v1/customers/bulk/", {"customers": rows}, format="json")
    before = list(Customer.objects.order_by("id").values_list("updated_at", flat=True))
    rows[2]["attributes"]["age"] = 99
    response = api.post("/api/v1/customers/bulk/", {"customers": rows}, format="json")
    assert response.json() == {"created": 0, "updated": 1, "unchanged": 2}
    after = list(Customer.objects.order_by("id").values_list("updated_at", flat=True))
    assert after[:2] == before[:2] and after[2] > before[2]


def test_bulk_is_all_or_nothing_and_lists_every_bad_row(api):
    rows = [{"external_id": "c1"}, {"external_id": "c2", "attributes": {"age": "x"}},
            {"external_id": "c1"}, "not an object", {"external_id": "c5", "email": "a@b"},
            {"external_id": 5}]
    response = api.post("/api/v1/customers/bulk/", {"customers": rows}, format="json")
    assert response.status_code == 400
    errors = rows_of(response)
    assert set(errors) == {1, 2, 3, 4, 5}
    assert errors[1] == {"attributes.age": ["must be a number from -1e+09 to 1e+09"]}
    assert errors[2] == {"external_id": ["repeated within this request"]}
    assert "email" in errors[4]
    assert "5 of 6 items were rejected" in response.json()["error"]["message"]
    assert not Customer.objects.exists()


@pytest.mark.parametrize("body", [{}, {"customers": []}, {"customers": {"a": 1}},
                                  {"customers": [{}] * 10_001}])
def test_bulk_needs_one_to_ten_thousand_rows(api, body):
    response = api.post("/api/v1/customers/bulk/", body, format="json")
    assert response.status_code == 400
    assert "customers" in response.json()["error"]["fields"]


def test_the_list_pages_by_cursor_and_filters(api):
    for i in range(5):
        Customer.objects.create(external_id=f"c{i}")
    Customer.objects.filter(external_id="c4").update(erased_at=timezone.now())
    first = api.get("/api/v1/customers/?page_size=2").json()
    assert [c["external_id"] for c in first["results"]] == ["c0", "c1"]
    second = api.get(first["next"]).json()
    assert [c["external_id"] for c in second["results"]] == ["c2", "c3"]
    erased = api.get("/api/v1/customers/?erased=true").json()["results"]
    assert [c["external_id"] for c in erased] == ["c4"]
    later = (timezone.now() + timedelta(hours=1)).isoformat()
    assert api.get("/api/v1/customers/", {"updated_after": later}).json()["results"] == []
    assert len(api.get("/api/v1/customers/", {"updated_before": later}).json()["results"]) == 5


def test_it_lists_the_declared_attributes(api):
    keys = [a["key"] for a in api.get("/api/v1/customer-attributes/").json()["results"]]
    assert keys == list(CustomerAttribute.objects.values_list("key", flat=True))


def test_a_customer_created_meanwhile_turns_the_insert_into_an_update(api):
    """The race between reading stored customers and writing: retried, not a 500."""
    Customer.objects.create(external_id="c1", attributes={"age": 1})
    real = services._customers_stored
    calls = []

    def stale_then_real(external_ids):
        calls.append(1)
        return {} if len(calls) == 1 else real(external_ids)

    with mock.patch.object(services, "_customers_stored", side_effect=stale_then_real):
        response = api.post("/api/v1/customers/bulk/", {"customers": [
            {"external_id": "c1", "attributes": {"age": 2}}, {"external_id": "c2"}]},
            format="json")
    assert response.json() == {"created": 1, "updated": 1, "unchanged": 0}
    assert Customer.objects.get(external_id="c1").attributes == {"age": 2}
