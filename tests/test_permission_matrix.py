"""Who may do what, walked over every door: each admin URL, each admin action, each API operation.

Roles: anonymous, staff without permissions, view-only staff (every view_
permission and nothing else), Campaign manager, Analyst, superuser; for the
API also keys of read and write scope. The admin's URLs come from
``admin.site``'s registry and each ModelAdmin's ``get_urls``, the actions
from each ModelAdmin, the API's operations from the OpenAPI schema, so a new
page, action or endpoint is walked without editing this file (and one whose
parameters or permission this file cannot work out fails it).

What each needs is written here from the roles (core/groups.py) and the
admin, not read from the code under test: the API must ask a staff session
for what the admin asks (``core.run_tasks`` to queue work,
``modelling.export_targetinglist`` to take customer ids out, ``add`` to
create). Every answer must be below 500; a refusal is 403 (or the login page
for anonymous); an allowed request is not refused. Each request runs in a
savepoint that is rolled back, so one cell cannot change the next.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, Permission, User
from django.contrib.messages import get_messages
from django.core.cache import cache
from django.db import transaction
from django.test import Client
from django.urls import resolve, reverse
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    SolarSchedule,
)
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from core.api.permissions import session_permissions
from core.api_keys import api_key_create
from core.groups import ANALYST, CAMPAIGN_MANAGER
from core.models import ApiKey, AuditEntry, TaskRun
from experiments.analysis import experiment_analyse
from jobs.models import CampaignSchedule
from marketing.models import BehaviourSnapshot, Customer, CustomerAttribute, Event, Segment
from modelling.followup import targeting_follow_up_create
from modelling.models import SegmentationRun, SegmentCluster
from modelling.targeting import targeting_list_create
from tests.api.conftest import champion, demo_experiment  # noqa: F401 - fixtures

pytestmark = pytest.mark.django_db

RUN = "core.run_tasks"
EXPORT = "modelling.export_targetinglist"
ROLES = ["anonymous", "staff_without_permission", "view_only", "campaign_manager", "analyst",
         "superuser"]
NO_ACTION = "No action selected."

# --- the seeded world ------------------------------------------------------------------


@pytest.fixture
def world(champion):  # noqa: F811 - the fixture imported above
    """One saved object of every model the admin shows, and the role users."""
    experiment = champion.experiment
    campaign = champion.campaign
    result = experiment_analyse(experiment=experiment)
    target = targeting_list_create(campaign=campaign, model_version=champion)
    follow_up = targeting_follow_up_create(targeting_list=target)
    build_run = TaskRun.objects.create(name="targeting_list_build",
                                       params={"model_version_id": champion.id})
    every_hour = IntervalSchedule.objects.create(every=1, period=IntervalSchedule.HOURS)
    schedule = CampaignSchedule(campaign=campaign, action="analyse", every_hours=24)
    from jobs.schedules import campaign_schedule_save

    campaign_schedule_save(schedule)
    segmentation = SegmentationRun.objects.create(
        campaign=campaign, experiment=experiment, cutoff=datetime(2026, 10, 1, tzinfo=UTC),
        status=SegmentationRun.Status.READY, k=2, customers=10)
    SegmentCluster.objects.create(run=segmentation, index=0, size=5)
    objects = {
        TaskRun: build_run,
        ApiKey: api_key_create(name="matrix-seed", scope=ApiKey.Scope.READ)[0],
        AuditEntry: AuditEntry.objects.create(action="run", target="seed", actor="system:test"),
        CustomerAttribute: CustomerAttribute.objects.order_by("id").first(),
        Customer: Customer.objects.order_by("id").first(),
        Event: Event.objects.order_by("id").first(),
        Segment: Segment.objects.order_by("id").first(),
        type(campaign): campaign,
        BehaviourSnapshot: BehaviourSnapshot.objects.first() or BehaviourSnapshot.objects.create(
            spec_key="matrix", as_of=datetime(2026, 10, 1, tzinfo=UTC)),
        type(experiment): experiment,
        type(result): result,
        type(champion): champion,
        type(target): target,
        type(follow_up): follow_up,
        CampaignSchedule: schedule,
        SegmentationRun: segmentation,
        PeriodicTask: PeriodicTask.objects.create(name="matrix", task="core.tasks.nothing",
                                                  interval=every_hour),
        IntervalSchedule: every_hour,
        CrontabSchedule: CrontabSchedule.objects.create(minute="0", hour="3"),
        SolarSchedule: SolarSchedule.objects.create(event="sunrise", latitude=52, longitude=4),
        ClockedSchedule: ClockedSchedule.objects.create(
            clocked_time=datetime(2027, 1, 1, tzinfo=UTC)),
        Group: Group.objects.get(name=ANALYST),
    }
    users = {"staff_without_permission": User.objects.create_user("nobody", is_staff=True)}
    users["view_only"] = User.objects.create_user("viewer", is_staff=True)
    users["view_only"].user_permissions.set(Permission.objects.filter(codename__startswith="view_"))
    for role, group in [("campaign_manager", CAMPAIGN_MANAGER), ("analyst", ANALYST)]:
        users[role] = User.objects.create_user(role, is_staff=True)
        users[role].groups.add(Group.objects.get(name=group))
    users["superuser"] = User.objects.create_superuser("root", "root@example.com", "x")
    objects[User] = users["analyst"]
    return {"objects": objects, "users": users, "experiment": experiment, "campaign": campaign,
            "version": champion, "target": target, "follow_up": follow_up, "result": result,
            "build_run": build_run}


def client_for(world, role: str) -> Client:
    client = Client()
    if role != "anonymous":
        client.force_login(world["users"][role])
    return client


def may(world, role: str, perms: set[str] | None) -> bool:
    """Whether ``role`` holds every permission in ``perms`` (None: nobody may)."""
    if role == "anonymous" or perms is None:
        return False
    user = User.objects.get(pk=world["users"][role].pk)  # fresh permission cache
    return user.has_perms(perms)


def rolled_back(send):
    """Send one request in a savepoint that is undone; a crash counts as a 500."""
    with transaction.atomic():
        try:
            response = send()
        except Exception as exc:  # noqa: BLE001 - the matrix reports it as a 5xx cell
            response = type("Crash", (), {"status_code": 500, "error": repr(exc)})()
        transaction.set_rollback(True)
    return response


# --- the admin -------------------------------------------------------------------------

# Custom admin views: (method, permissions needed), written from the admin's promises.
CUSTOM_ADMIN_VIEWS = {
    "experiments_experiment_overview": ("GET", {"experiments.view_experiment"}),
    "experiments_experiment_transition": ("POST", {"experiments.change_experiment"}),
    "experiments_experiment_run": ("POST", {RUN}),
    "experiments_experiment_progress": ("GET", {"core.view_taskrun"}),
    "modelling_modelversion_score": ("POST", {RUN}),
    "modelling_modelversion_target": ("GET", {"modelling.view_modelversion"}),
    "modelling_modelversion_target_run": ("GET", {"modelling.view_modelversion"}),
    "modelling_targetinglist_csv": ("GET", {EXPORT}),
    "modelling_targetingfollowup_plan_csv": ("GET", {EXPORT}),
    "modelling_segmentationrun_start": ("GET", {RUN}),
    "modelling_segmentationrun_save_cluster": ("POST", {"marketing.add_segment"}),
    "auth_user_password_change": ("GET", {"auth.change_user"}),
}
# What each admin action needs (besides seeing the list); Django's delete_selected needs
# the model's delete permission. An action missing here fails the test.
ACTION_NEEDS = {
    ("core.apikey", "deactivate"): {"core.change_apikey"},
    # Personal data: permissions no group holds; given to whoever answers privacy requests.
    ("marketing.customer", "export_personal_data"): {"marketing.export_personal_data"},
    ("marketing.customer", "erase_personal_data"): {"marketing.erase_personal_data"},
    ("experiments.experiment", "start"): {"experiments.change_experiment"},
    ("experiments.experiment", "stop"): {"experiments.change_experiment"},
    ("experiments.experiment", "analyse"): {RUN},
    ("experiments.experiment", "train"): {RUN},
    ("marketing.segment", "count_members"): {RUN},
    ("modelling.modelversion", "score"): {RUN},
    ("modelling.modelversion", "target"): {RUN},
    ("modelling.targetinglist", "follow_up"): {"experiments.add_experiment"},
    ("modelling.targetingfollowup", "start"): {RUN},
    ("modelling.targetingfollowup", "analyse"): {RUN},
    ("django_celery_beat.periodictask", "enable_tasks"): {"django_celery_beat.change_periodictask"},
    ("django_celery_beat.periodictask", "disable_tasks"): {
        "django_celery_beat.change_periodictask"},
    ("django_celery_beat.periodictask", "toggle_tasks"): {
        "django_celery_beat.change_periodictask"},
    ("django_celery_beat.periodictask", "run_tasks"): {RUN},
}
ARGUMENTS = {"to": ["start", "stop"], "job": ["analyse", "train"], "index": [0]}


def _superuser_request(world):
    from django.test import RequestFactory

    request = RequestFactory().get("/admin/")
    request.user = world["users"]["superuser"]
    return request


def admin_cells(world) -> list[tuple[str, str, str, object]]:
    """(label, method, url, permissions needed or None) for every named admin URL."""
    cells = []
    request = _superuser_request(world)
    for model, model_admin in admin.site._registry.items():
        obj = world["objects"][model]
        label = f"{model._meta.app_label}.{model._meta.model_name}"
        for pattern in model_admin.get_urls():
            name = pattern.name
            if name is None:  # Django's redirect of <id>/ to <id>/change/
                continue
            op = name.removeprefix(f"{model._meta.app_label}_{model._meta.model_name}_")
            params = re.findall(r"<(?:\w+:)?(\w+)>", str(pattern.pattern))
            choices = [{}]
            for param in params:
                values = ({"object_id": [obj.pk], "pk": [obj.pk], "id": [obj.pk],
                           "run_id": [world["build_run"].pk]}.get(param) or ARGUMENTS[param])
                choices = [{**c, param: v} for c in choices for v in values]
            for kwargs in choices:
                url = reverse(f"admin:{name}", kwargs=kwargs)
                if name in CUSTOM_ADMIN_VIEWS:
                    method, perms = CUSTOM_ADMIN_VIEWS[name]
                elif op in ("changelist", "change", "history"):
                    method, perms = "GET", {f"{label}.view"}  # view or change, see may_view
                elif op == "add":
                    method = "GET"
                    perms = ({f"{model._meta.app_label}.add_{model._meta.model_name}"}
                             if model_admin.has_add_permission(request) else None)
                elif op == "delete":
                    method = "GET"
                    perms = ({f"{model._meta.app_label}.delete_{model._meta.model_name}"}
                             if model_admin.has_delete_permission(request, obj) else None)
                else:
                    raise AssertionError(f"admin URL {name} is not in CUSTOM_ADMIN_VIEWS")
                cells.append((f"{name}{kwargs}", method, url, perms))
    return cells


def may_admin(world, role: str, perms) -> bool:
    """``app.model.view`` stands for Django's rule: view or change permission."""
    if perms and len(perms) == 1 and next(iter(perms)).endswith(".view"):
        app, model, _ = next(iter(perms)).split(".")
        return may(world, role, {f"{app}.view_{model}"}) or may(
            world, role, {f"{app}.change_{model}"})
    return may(world, role, perms)


def test_every_admin_url_answers_each_role_as_its_permissions_say(world):
    cells = admin_cells(world)
    failures = []
    for role in ROLES:
        client = client_for(world, role)
        for label, method, url, perms in cells:
            send = (lambda u=url, c=client: c.get(u)) if method == "GET" else (
                lambda u=url, c=client: c.post(u, {}))
            response = rolled_back(send)
            status = response.status_code
            allowed = may_admin(world, role, perms)
            if status >= 500:
                failures.append((role, label, status, getattr(response, "error", "")))
            elif role == "anonymous":
                if not (status == 302 and "/admin/login/" in response["Location"]):
                    failures.append((role, label, status, "not sent to the login page"))
            elif allowed and (status not in (200, 302) or "/admin/login/" in response.get(
                    "Location", "")):
                failures.append((role, label, status, "refused, but the role may"))
            elif not allowed and status != 403:
                failures.append((role, label, status, "not refused"))
    size = len(cells) * len(ROLES)
    print(f"\nadmin URL matrix: {len(cells)} URLs x {len(ROLES)} roles = {size} cells, "
          f"{len(failures)} failures")
    assert not failures, failures
    assert len(cells) >= 100


def action_cells(world) -> list[tuple[object, str, set[str] | None]]:
    cells = []
    request = _superuser_request(world)
    for model, model_admin in admin.site._registry.items():
        names = [name for name, _ in admin.site.actions] + [
            a if isinstance(a, str) else a.__name__ for a in (model_admin.actions or [])]
        for name in names:
            if name == "delete_selected":
                # A page that allows no deletion at all (snapshots) refuses even a superuser.
                perms = ({f"{model._meta.app_label}.delete_{model._meta.model_name}"}
                         if model_admin.has_delete_permission(request) else None)
            else:
                perms = ACTION_NEEDS[(model._meta.label_lower, name)]
            cells.append((model, name, perms))
    return cells


def test_every_admin_action_runs_only_for_the_roles_allowed_and_is_audited(world):
    cells = action_cells(world)
    failures = []
    for role in ROLES:
        for model, name, perms in cells:
            client = client_for(world, role)  # a fresh session: no messages left from before
            obj = world["objects"][model]
            url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
            label = f"{model._meta.label}:{name}"
            seen = {}

            def send(url=url, name=name, obj=obj, seen=seen, client=client):
                before = AuditEntry.objects.count()
                response = client.post(url, {"action": name, "_selected_action": [obj.pk],
                                             "index": 0})
                seen["audited"] = AuditEntry.objects.count() - before
                seen["messages"] = [(m.level_tag, str(m)) for m in
                                    get_messages(response.wsgi_request)] if hasattr(
                    response, "wsgi_request") else []
                return response

            response = rolled_back(send)
            status = response.status_code
            texts = [text for _, text in seen.get("messages", [])]
            # A confirmation page (delete, erase) or a download (a customer's export) is the
            # action answering, not refusing.
            confirmation = status == 200 and any(page in str(getattr(
                response, "template_name", "")) for page in ("delete_selected_confirmation",
                                                             "erase_confirmation"))
            download = status == 200 and hasattr(response, "get") and "attachment" in response.get(
                "Content-Disposition", "")
            ran = (status == 302 and NO_ACTION not in texts
                   and "/admin/login/" not in response.get("Location", "")) or confirmation \
                or download
            allowed = may(world, role, perms) and may_admin(
                world, role, {f"{model._meta.label_lower}.view"})
            if status >= 500:
                failures.append((role, label, status, getattr(response, "error", "")))
            elif allowed != ran:
                failures.append((role, label, status, f"ran={ran} allowed={allowed}", texts))
            elif ran and not confirmation and not any(
                    level == "error" for level, _ in seen["messages"]) and not seen["audited"]:
                failures.append((role, label, status, "ran without an audit entry"))
    size = len(cells) * len(ROLES)
    print(f"\nadmin action matrix: {len(cells)} actions x {len(ROLES)} roles = {size} cells, "
          f"{len(failures)} failures")
    assert not failures, failures


def test_every_admin_change_is_audited_without_the_rows_text(world, client):
    client.force_login(world["users"]["superuser"])
    segment = world["objects"][Segment]
    url = reverse("admin:marketing_segment_change", args=[segment.pk])
    response = client.post(url, {"key": segment.key, "name": "Renamed", "description": "",
                                 "rule": '{"attr": "age", "op": "gte", "value": 30}'})
    assert response.status_code == 302, response.content[:3000]
    entry = AuditEntry.objects.order_by("-id").first()
    assert (entry.action, entry.target, entry.actor) == (
        "change", f"marketing.segment {segment.pk}", "user:root")
    assert entry.detail == {"fields": ["Name", "Rule"]} or "Name" in entry.detail["fields"]
    customer = world["objects"][Customer]
    client.post(reverse("admin:marketing_customer_delete", args=[customer.pk]), {"post": "yes"})
    entry = AuditEntry.objects.order_by("-id").first()
    assert (entry.action, entry.target) == ("delete", f"marketing.customer {customer.pk}")
    assert customer.external_id not in str(AuditEntry.objects.values_list("target", "detail"))


# --- the API ---------------------------------------------------------------------------

# Operations the admin also offers: a staff session needs what the admin asks for.
API_AS_IN_ADMIN = {
    ("POST", "/api/v1/campaigns/"): {"marketing.add_campaign"},
    ("POST", "/api/v1/segments/"): {"marketing.add_segment"},
    ("POST", "/api/v1/experiments/"): {"experiments.add_experiment"},
    ("POST", "/api/v1/experiments/{key}/start/"): {"experiments.change_experiment"},
    ("POST", "/api/v1/experiments/{key}/stop/"): {"experiments.change_experiment"},
    ("POST", "/api/v1/experiments/{key}/analyse/"): {RUN, "experiments.view_experiment"},
    ("POST", "/api/v1/experiments/{key}/train/"): {RUN, "experiments.view_experiment"},
    ("POST", "/api/v1/campaigns/{key}/train-response/"): {RUN, "marketing.view_campaign"},
    ("POST", "/api/v1/campaigns/{key}/target-lists/"): {RUN, "modelling.view_targetinglist"},
    ("POST", "/api/v1/model-versions/{id}/score/"): {RUN, "modelling.view_modelversion"},
    ("POST", "/api/v1/segments/{key}/count/"): {RUN, "marketing.view_segment"},
    ("POST", "/api/v1/campaigns/{key}/train-behaviour/"): {RUN, "marketing.view_campaign"},
    ("POST", "/api/v1/campaigns/{key}/segmentations/"): {RUN, "marketing.view_campaign"},
    ("POST", "/api/v1/segmentation-runs/{id}/clusters/{index}/save/"): {"marketing.add_segment"},
    ("POST", "/api/v1/follow-ups/{id}/start/"): {RUN, "modelling.view_targetingfollowup"},
    ("POST", "/api/v1/follow-ups/{id}/analyse/"): {RUN, "modelling.view_targetingfollowup"},
    ("POST", "/api/v1/target-lists/{id}/follow-ups/"): {"experiments.add_experiment",
                                                       "modelling.view_targetingfollowup"},
    ("GET", "/api/v1/target-lists/{id}/csv/"): {EXPORT, "modelling.view_targetinglist"},
    ("GET", "/api/v1/target-lists/{id}/entries/"): {EXPORT, "modelling.view_targetinglist"},
    ("GET", "/api/v1/follow-ups/{id}/plan/"): {EXPORT, "modelling.view_targetingfollowup"},
    ("GET", "/api/v1/follow-ups/{id}/plan/csv/"): {EXPORT, "modelling.view_targetingfollowup"},
}
# A customer's data export and erasure: a key needs privacy scope (read and write keys are
# refused, even for the export's GET), a session the view's personal-data permission.
PRIVACY_OPERATIONS = {("POST", "/api/v1/customers/{external_id}/erase/"),
                      ("GET", "/api/v1/customers/{external_id}/export/")}
API_ROLES = ["read_key", "write_key", *ROLES]


def api_operations(world) -> list[tuple[str, str, str]]:
    """(method, schema path, concrete path) for every operation in the OpenAPI schema."""
    customer = world["objects"][Customer]
    values = {"campaigns": world["campaign"].key, "customers": customer.external_id,
              "experiments": world["experiment"].key, "assignments": customer.external_id,
              "results": world["result"].id, "follow-ups": world["follow_up"].id,
              "model-versions": world["version"].id,
              "segments": world["objects"][Segment].key, "target-lists": world["target"].id,
              "tasks": world["build_run"].id,
              "segmentation-runs": world["objects"][SegmentationRun].id, "clusters": 0}
    schema = SchemaGenerator().get_schema(request=None, public=True)
    operations = []
    for path, item in schema["paths"].items():
        parts = path.strip("/").split("/")
        concrete = "/" + "/".join(
            str(values[parts[i - 1]]) if part.startswith("{") else part
            for i, part in enumerate(parts)) + "/"
        for method in item:
            if method in ("get", "post", "put", "patch", "delete"):
                operations.append((method.upper(), path, concrete))
    return operations


def api_client_for(world, role: str) -> APIClient:
    client = APIClient()
    if role.endswith("_key"):
        scope = ApiKey.Scope.READ if role == "read_key" else ApiKey.Scope.WRITE
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {api_key_create(name=role, scope=scope)[1]}")
    elif role != "anonymous":
        client.force_login(world["users"][role])
    return client


def test_every_api_operation_answers_each_credential_as_its_permissions_say(world, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_CLASSES": []}
    cache.clear()
    operations = api_operations(world)
    failures = []
    for role in API_ROLES:
        client = api_client_for(world, role)
        for method, path, concrete in operations:
            response = rolled_back(
                (lambda c=concrete, api=client: api.get(c)) if method == "GET" else
                (lambda m=method, c=concrete, api=client: api.generic(
                    m, c, "{}", content_type="application/json")))
            status = response.status_code
            label = f"{method} {path}"
            if status >= 500:
                failures.append((role, label, status, getattr(response, "error", "")))
                continue
            refused = status in (401, 403)
            if role == "anonymous" or (role == "read_key" and method != "GET"):
                allowed = False
            elif role.endswith("_key"):
                allowed = (method, path) not in PRIVACY_OPERATIONS
            else:
                view = resolve(concrete).func.view_class()
                perms = ({f"marketing.{view.personal_data_permission}"}
                         if (method, path) in PRIVACY_OPERATIONS
                         else API_AS_IN_ADMIN.get((method, path))
                         or session_permissions(view, method))
                allowed = may(world, role, perms)
            if allowed == refused:
                failures.append((role, label, status, f"allowed={allowed}"))
    size = len(operations) * len(API_ROLES)
    print(f"\nAPI matrix: {len(operations)} operations x {len(API_ROLES)} credentials = "
          f"{size} cells, {len(failures)} failures")
    assert not failures, failures
    assert len(operations) >= 50
