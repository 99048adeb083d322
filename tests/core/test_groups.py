"""The Campaign manager and Analyst groups exist after migrate, with exact permissions."""

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command

from core.groups import ANALYST, CAMPAIGN_MANAGER

pytestmark = pytest.mark.django_db


def codenames(name: str) -> set[str]:
    return {f"{p.content_type.app_label}.{p.codename}"
            for p in Group.objects.get(name=name).permissions.select_related("content_type")}


def test_the_migrated_test_database_has_both_groups_with_the_expected_permissions():
    manager, analyst = codenames(CAMPAIGN_MANAGER), codenames(ANALYST)
    for perm in ["experiments.view_experiment", "marketing.view_customer",
                 "modelling.view_modelversion", "core.view_taskrun", "jobs.view_campaignschedule"]:
        assert perm in analyst and perm in manager
    assert {p for p in analyst if not p.split(".")[1].startswith("view_")} == set()
    assert {"experiments.add_experiment", "experiments.change_arm", "marketing.add_segment",
            "marketing.change_campaign", "jobs.add_campaignschedule",
            "modelling.change_targetinglist", "core.run_tasks",
            "modelling.export_targetinglist"} <= manager
    assert not {p for p in manager if ".delete_" in p}
    assert "marketing.add_customer" not in manager and "core.change_apikey" not in manager
    assert not {p for p in manager | analyst if p.startswith(("auth.", "sessions."))}


def test_migrate_again_restores_a_group_edited_by_hand():
    group = Group.objects.get(name=ANALYST)
    group.permissions.add(Permission.objects.get(codename="delete_experiment"))
    before = Group.objects.count()
    call_command("migrate", verbosity=0)
    assert "experiments.delete_experiment" not in codenames(ANALYST)
    assert Group.objects.count() == before


def test_users_in_the_groups_get_the_permissions(django_user_model):
    user = django_user_model.objects.create_user("m", password="x", is_staff=True)
    user.groups.add(Group.objects.get(name=CAMPAIGN_MANAGER))
    assert user.has_perm("core.run_tasks") and user.has_perm("experiments.change_experiment")
    assert not user.has_perm("experiments.delete_experiment")


def test_demo_admin_creates_the_three_demo_users_in_their_groups(capsys, settings):
    from django.contrib.auth import get_user_model

    settings.DEBUG = True
    call_command("demo_admin")
    out = capsys.readouterr().out
    users = {u.username: u for u in get_user_model().objects.all()}
    assert users["admin"].is_superuser
    assert [g.name for g in users["manager"].groups.all()] == [CAMPAIGN_MANAGER]
    assert [g.name for g in users["analyst"].groups.all()] == [ANALYST]
    assert not users["analyst"].is_superuser and users["analyst"].is_staff
    password = out.split("username=analyst password=")[1].split()[0]
    assert users["analyst"].check_password(password)


def test_demo_admin_keeps_an_existing_password_unless_told_to_reset(capsys, settings):
    from django.contrib.auth import get_user_model

    settings.DEBUG = True
    call_command("demo_admin")
    first = capsys.readouterr().out.split("username=admin password=")[1].split()[0]
    call_command("demo_admin")
    assert "username=admin, password unchanged" in capsys.readouterr().out
    admin = get_user_model().objects.get(username="admin")
    assert admin.check_password(first)
    call_command("demo_admin", "--reset")
    second = capsys.readouterr().out.split("username=admin password=")[1].split()[0]
    admin.refresh_from_db()
    assert second != first and admin.check_password(second) and not admin.check_password(first)
