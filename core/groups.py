"""The two roles of the admin, kept in step with the code after every migrate.

- *Campaign manager*: views everything in the platform's apps, adds and
  changes what a campaign is made of (campaigns, segments, experiments with
  their arms and metrics, campaign schedules, targeting lists), runs
  background tasks (``core.run_tasks``) and exports targeting lists
  (``modelling.export_targetinglist``). Deletes nothing.
- *Analyst*: views everything in the platform's apps, nothing else.

Permissions are created by Django's own post_migrate handler, so a data
migration would run before they exist on a fresh database. Instead this runs
on core's post_migrate: it first creates every app's permissions (idempotent;
later apps' post_migrate would do it after core's) and then sets each group's
permissions to exactly the list below, so a new model gets its view
permission in both groups at the next migrate. Edits made to these two groups
in the admin are overwritten then: change this file instead.
"""

from __future__ import annotations

from django.apps import apps as global_apps
from django.contrib.auth.management import create_permissions
from django.db import DEFAULT_DB_ALIAS

CAMPAIGN_MANAGER = "Campaign manager"
ANALYST = "Analyst"
PLATFORM_APPS = ("core", "marketing", "experiments", "modelling", "jobs")
MANAGER_EDITS = {
    ("marketing", "campaign"), ("marketing", "segment"),
    ("experiments", "experiment"), ("experiments", "arm"), ("experiments", "metric"),
    ("jobs", "campaignschedule"), ("modelling", "targetinglist"),
}
MANAGER_EXTRA = {("core", "run_tasks"), ("modelling", "export_targetinglist")}


def group_permission_codenames() -> dict[str, set[str]]:
    """``{group name: {"app_label.codename", ...}}`` as the groups should be."""
    views = {f"{m._meta.app_label}.view_{m._meta.model_name}"
             for label in PLATFORM_APPS for m in global_apps.get_app_config(label).get_models()}
    edits = {f"{app}.{action}_{model}" for app, model in MANAGER_EDITS
             for action in ("add", "change")}
    extra = {f"{app}.{codename}" for app, codename in MANAGER_EXTRA}
    return {CAMPAIGN_MANAGER: views | edits | extra, ANALYST: views}


def groups_sync(*, using: str = DEFAULT_DB_ALIAS) -> None:
    from django.contrib.auth.models import Group, Permission

    for app_config in global_apps.get_app_configs():
        create_permissions(app_config, verbosity=0, using=using, apps=global_apps)
    wanted = group_permission_codenames()
    by_name = {f"{app}.{codename}": pk for pk, app, codename in Permission.objects.using(using)
               .values_list("pk", "content_type__app_label", "codename")}
    for name, codenames in wanted.items():
        missing = codenames - by_name.keys()
        if missing:
            raise RuntimeError(f"group {name!r}: no such permissions {sorted(missing)}")
        group, _ = Group.objects.using(using).get_or_create(name=name)
        group.permissions.set([by_name[c] for c in codenames])


def groups_sync_after_migrate(sender, using=DEFAULT_DB_ALIAS, **kwargs) -> None:
    groups_sync(using=using)
