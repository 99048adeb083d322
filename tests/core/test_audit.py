import pytest
from django.contrib.auth.models import User
from django.db import transaction

from core.audit import audit_record
from core.models import AuditEntry

pytestmark = pytest.mark.django_db


def test_entry_names_the_user_and_the_target():
    user = User.objects.create_user("maria")
    entry = audit_record("export", "targeting list 4", user=user, detail={"rows": 12})
    assert (entry.actor, entry.user_id, entry.action, entry.target) == (
        "user:maria", user.pk, "export", "targeting list 4")
    assert entry.detail == {"rows": 12}


def test_system_actor_and_unknown_action():
    assert audit_record("run", "scoring", system="beat").actor == "system:beat"
    with pytest.raises(ValueError, match="unknown audit action"):
        audit_record("explode", "x")


def test_a_rolled_back_change_leaves_no_entry():
    with pytest.raises(RuntimeError):
        with transaction.atomic():
            audit_record("erase", "customer pseudonym ab12", system="test")
            raise RuntimeError("change failed")
    assert not AuditEntry.objects.exists()


def test_audit_log_is_read_only_in_the_admin(admin_client):
    entry = audit_record("start", "experiment 3", system="test")
    assert admin_client.get("/admin/core/auditentry/").status_code == 200
    page = admin_client.get(f"/admin/core/auditentry/{entry.pk}/change/")
    assert page.status_code == 200 and b'name="_save"' not in page.content
    assert admin_client.post(f"/admin/core/auditentry/{entry.pk}/delete/").status_code == 403


def test_api_keys_are_revoked_in_the_admin_never_deleted(admin_client):
    from core.api_keys import api_key_create

    key, _ = api_key_create(name="crm", scope="write")
    assert admin_client.post(f"/admin/core/apikey/{key.pk}/delete/", {"post": "yes"}).status_code \
        == 403
    admin_client.post("/admin/core/apikey/", {"action": "deactivate", "_selected_action": [key.pk]})
    key.refresh_from_db()
    assert not key.is_active
    assert AuditEntry.objects.filter(action="revoke").exists()
