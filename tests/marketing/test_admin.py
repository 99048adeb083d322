"""The customer admin writes through the API's service and leaves erased customers alone."""

from datetime import UTC, datetime

import pytest
from django.urls import reverse

from marketing.models import BehaviourSnapshot, Customer
from tests.factories import attributes_declare, customer_make

pytestmark = pytest.mark.django_db


def _form(**fields) -> dict:
    return {"external_id": "crm_1", "attributes": "{}", **fields}


def test_a_customer_added_in_the_admin_is_checked_like_the_api(admin_client):
    attributes_declare()
    url = reverse("admin:marketing_customer_add")
    response = admin_client.post(url, _form(attributes='{"channel": "fax", "age": "old"}'))
    html = response.content.decode()
    assert response.status_code == 200
    assert "channel: must be one of [&#x27;web&#x27;, &#x27;phone&#x27;, &#x27;store&#x27;]" in html
    assert "age: must be a number from -1e+09 to 1e+09" in html
    assert Customer.objects.count() == 0
    response = admin_client.post(url, _form(attributes='{"channel": "web", "age": 41}',
                                            marketing_consent="on"))
    assert response.status_code == 302
    customer = Customer.objects.get()
    assert (customer.external_id, customer.attributes, customer.marketing_consent) == (
        "crm_1", {"channel": "web", "age": 41}, True)


def test_consent_and_attribute_edits_merge_like_the_api_and_removals_are_refused(admin_client):
    attributes_declare()
    customer = customer_make(channel="web", age=30, consent=False)
    url = reverse("admin:marketing_customer_change", args=[customer.id])
    response = admin_client.post(url, {"attributes": '{"channel": "phone", "age": 30}',
                                       "marketing_consent": "on"})
    assert response.status_code == 302
    customer.refresh_from_db()
    assert (customer.attributes, customer.marketing_consent) == (
        {"channel": "phone", "age": 30}, True)
    response = admin_client.post(url, {"attributes": '{"channel": "phone"}'})
    assert "attributes cannot be removed here: age" in response.content.decode()
    customer.refresh_from_db()
    assert (customer.attributes, customer.marketing_consent) == (
        {"channel": "phone", "age": 30}, True)


def test_an_erased_customer_is_read_only(admin_client):
    customer = customer_make(consent=False)
    Customer.objects.filter(pk=customer.pk).update(erased_at=datetime(2026, 1, 5, tzinfo=UTC))
    url = reverse("admin:marketing_customer_change", args=[customer.id])
    page = admin_client.get(url)
    html = page.content.decode()
    assert page.status_code == 200 and customer.external_id in html
    assert 'name="_save"' not in html and 'name="attributes"' not in html
    assert "deletelink" not in html
    response = admin_client.post(url, {"attributes": '{"email": "back@example.com"}',
                                       "marketing_consent": "on"})
    assert response.status_code == 403
    customer.refresh_from_db()
    assert (customer.attributes, customer.marketing_consent) == ({}, False)
    delete = admin_client.post(reverse("admin:marketing_customer_delete", args=[customer.id]),
                               {"post": "yes"})
    assert delete.status_code == 403 and Customer.objects.filter(pk=customer.pk).exists()


def test_a_behaviour_snapshot_page_renders_without_save_or_delete(admin_client):
    snapshot = BehaviourSnapshot.objects.create(
        spec_key="purchase:30", as_of=datetime(2026, 1, 1, tzinfo=UTC), customers=12)
    url = reverse("admin:marketing_behavioursnapshot_change", args=[snapshot.id])
    page = admin_client.get(url)
    html = page.content.decode()
    assert page.status_code == 200 and "purchase:30" in html
    assert 'name="_save"' not in html and "deletelink" not in html
    assert admin_client.post(url, {"customers": "99"}).status_code == 403
    snapshot.refresh_from_db()
    assert snapshot.customers == 12


def test_the_events_list_filters_by_the_sources_of_recent_events(admin_client):
    from marketing.models import Event

    customer = customer_make()
    for source in ("shop", "crm", "shop"):
        Event.objects.create(customer=customer, kind="purchase", source=source,
                             occurred_at=datetime(2026, 6, 1, tzinfo=UTC))
    url = reverse("admin:marketing_event_changelist")
    html = admin_client.get(url).content.decode()
    assert "?source=crm" in html and "?source=shop" in html
    response = admin_client.get(url + "?source=shop")
    assert response.status_code == 200
    assert response.context["cl"].result_count == 2


def test_the_customer_search_finds_crm_ids_by_their_beginning(admin_client):
    Customer.objects.bulk_create([Customer(external_id=e) for e in
                                  ("crm-1001", "crm-1002", "web-crm-1")])
    url = reverse("admin:marketing_customer_changelist")
    found = admin_client.get(url + "?q=crm-100").context["cl"].result_list
    assert sorted(c.external_id for c in found) == ["crm-1001", "crm-1002"]
    assert [c.external_id for c in admin_client.get(url + "?q=crm-1002")
            .context["cl"].result_list] == ["crm-1002"]
