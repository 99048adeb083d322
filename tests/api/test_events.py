"""Events: bulk ingestion with idempotency keys, all or nothing; listing."""

from datetime import timedelta

import pytest

from core.pseudonyms import idempotency_key_pseudonym
from marketing.models import Event
from marketing.services import events_record
from tests.api.conftest import rows_of
from tests.factories import T0, customer_make, event_make

pytestmark = pytest.mark.django_db


def purchase(customer: str, key: str | None, minutes: int = 0, **extra) -> dict:
    return {"customer": customer, "kind": "purchase", "value": 20.5, "idempotency_key": key,
            "occurred_at": (T0 + timedelta(minutes=minutes)).isoformat(), **extra}


def test_it_records_events_and_skips_keys_it_has_seen(api):
    c = customer_make()
    body = {"source": "shop", "events": [purchase(c.external_id, "o1"),
                                         purchase(c.external_id, None, properties={"sku": "A"}),
                                         purchase(c.external_id, "o2", 5)]}
    assert api.post("/api/v1/events/bulk/", body, format="json").json() == {
        "created": 3, "duplicates": 0}
    body["events"].append(purchase(c.external_id, "o3", 9))
    assert api.post("/api/v1/events/bulk/", body, format="json").json() == {
        "created": 2, "duplicates": 2}  # the keyless event cannot be recognised
    stored = Event.objects.get(idempotency_key=idempotency_key_pseudonym("o2"))
    assert (stored.source, stored.value, stored.occurred_at) == ("shop", 20.5,
                                                                 T0 + timedelta(minutes=5))


def test_the_same_key_from_another_source_is_another_event(api):
    c = customer_make()
    for source in ("shop", "app"):
        body = {"source": source, "events": [purchase(c.external_id, "o1")]}
        assert api.post("/api/v1/events/bulk/", body, format="json").json()["created"] == 1


def test_it_rejects_bad_rows_by_index_and_writes_nothing(api):
    c = customer_make().external_id
    rows = [purchase(c, "ok"), purchase("ghost", "a"), purchase(c, "ok"),
            {**purchase(c, "b"), "occurred_at": "2026-06-01T12:00:00"},
            {**purchase(c, "c"), "kind": "refund"}, {**purchase(c, "d"), "value": "12"},
            {**purchase(c, "e"), "properties": [1]}, {**purchase(c, "f"), "colour": "red"},
            {**purchase(c, "g"), "idempotency_key": 7}, 42]
    response = api.post("/api/v1/events/bulk/", {"events": rows}, format="json")
    errors = rows_of(response)
    assert {i: list(e) for i, e in errors.items()} == {
        1: ["customer"], 2: ["idempotency_key"], 3: ["occurred_at"], 4: ["kind"], 5: ["value"],
        6: ["properties"], 7: ["colour"], 8: ["idempotency_key"], 9: ["non_field_errors"]}
    assert not Event.objects.exists()


def test_a_source_that_is_too_long_is_a_field_error(api):
    c = customer_make().external_id
    response = api.post("/api/v1/events/bulk/", {"source": "s" * 65,
                                                 "events": [purchase(c, "a")]}, format="json")
    assert list(response.json()["error"]["fields"]) == ["source"]


def test_the_service_accepts_datetimes_as_well_as_strings():
    c = customer_make()
    result = events_record([{"customer": c.external_id, "kind": "visit", "occurred_at": T0}])
    assert (result.created, result.rejected) == (1, [])


def test_events_of_an_erased_customer_keep_no_properties(api, privacy):
    c = customer_make()
    assert privacy.post(f"/api/v1/customers/{c.external_id}/erase/").status_code == 200
    api.post("/api/v1/events/bulk/", {"events": [purchase(c.external_id, "o", properties={
        "email": "x@y.z"})]}, format="json")
    assert Event.objects.get().properties == {}


def test_the_list_filters_by_customer_kind_source_and_time(api):
    a, b = customer_make(), customer_make()
    event_make(a, "purchase", T0, 10, source="shop")
    event_make(a, "visit", T0 + timedelta(days=1))
    event_make(b, "purchase", T0 + timedelta(days=2))

    def ids(**params):
        return [e["id"] for e in api.get("/api/v1/events/", params).json()["results"]]

    events = list(Event.objects.order_by("id").values_list("id", flat=True))
    assert ids() == events
    assert ids(customer=a.external_id) == events[:2]
    assert ids(kind="purchase") == [events[0], events[2]]
    assert ids(source="shop") == events[:1]
    assert ids(occurred_after=(T0 + timedelta(days=1)).isoformat()) == events[1:]
    assert ids(occurred_before=(T0 + timedelta(days=1)).isoformat()) == events[:1]
    assert api.get("/api/v1/events/", {"kind": "refund"}).status_code == 400
