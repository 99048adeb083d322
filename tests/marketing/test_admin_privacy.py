"""The admin's personal-data actions need their own permissions and are audit-logged."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.urls import reverse

from core.groups import CAMPAIGN_MANAGER
from core.models import AuditEntry
from marketing.models import Customer
from tests.factories import customer_make

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:marketing_customer_changelist")


def staff(client, *, privacy: bool):
    user = get_user_model().objects.create_user("u", password="x", is_staff=True)
    user.groups.add(Group.objects.get(name=CAMPAIGN_MANAGER))
    if privacy:
        user.user_permissions.add(*Permission.objects.filter(
            codename__in=["export_personal_data", "erase_personal_data"]))
    client.force_login(user)
    return client


def act(client, action, customer, **extra):
    return client.post(CHANGELIST, {"action": action, "_selected_action": [customer.pk], **extra})


def test_a_manager_without_the_permissions_sees_neither_action(client):
    customer = customer_make()
    manager = staff(client, privacy=False)
    html = manager.get(CHANGELIST).content.decode()
    assert "export_personal_data" not in html and "erase_personal_data" not in html
    act(manager, "erase_personal_data", customer, confirm="yes")
    customer.refresh_from_db()
    assert customer.erased_at is None


def test_export_downloads_json_and_erasure_asks_first_both_audited(client):
    customer = customer_make(age=30)
    dpo = staff(client, privacy=True)
    response = act(dpo, "export_personal_data", customer)
    assert response["Content-Disposition"].startswith("attachment;")
    assert json.loads(response.content)["customer"]["external_id"] == customer.external_id
    page = act(dpo, "erase_personal_data", customer)
    assert b"cannot be undone" in page.content
    assert Customer.objects.get(pk=customer.pk).erased_at is None
    act(dpo, "erase_personal_data", customer, confirm="yes")
    assert Customer.objects.get(pk=customer.pk).erased_at is not None
    entries = list(AuditEntry.objects.order_by("id").values_list("action", "actor", "target"))
    assert [(a, actor) for a, actor, _ in entries] == [("export", "user:u"), ("erase", "user:u")]
    assert all(customer.external_id not in target for *_, target in entries)
