"""Every API door that runs, starts, stops, creates or exports leaves an audit entry."""

from django.contrib.auth.models import Group, User
from django.urls import reverse

from core.groups import CAMPAIGN_MANAGER
from core.models import AuditEntry
from marketing.models import Customer
from tests.factories import experiment_make


def entries() -> list[tuple[str, str, str]]:
    return list(AuditEntry.objects.order_by("id").values_list("action", "target", "actor"))


def test_queueing_starting_and_stopping_are_recorded_with_the_key(api):
    experiment = experiment_make()
    base = f"/api/v1/experiments/{experiment.key}"
    assert api.post(f"{base}/start/").status_code == 200
    assert api.post(f"{base}/analyse/").status_code == 202
    assert api.post(f"{base}/stop/").status_code == 200
    (start, run, stop) = entries()
    assert start == ("start", f"experiments.experiment {experiment.id}", "api-key:crm-write")
    assert run[0] == "run" and run[1].endswith("(experiment_analyse)")
    assert stop[:2] == ("stop", f"experiments.experiment {experiment.id}")
    assert AuditEntry.objects.get(action="run").detail == {
        "task": "experiment_analyse", "params": {"experiment_id": experiment.id}}


def test_a_refused_transition_leaves_no_entry(api):
    experiment = experiment_make()
    assert api.post(f"/api/v1/experiments/{experiment.key}/stop/").status_code == 400
    assert entries() == []


def test_exports_through_the_api_and_the_admin_are_recorded_without_customer_ids(
        api, champion, client):
    created = api.post(f"/api/v1/campaigns/{champion.campaign.key}/target-lists/",
                       {"budget": 1.0}, format="json")
    assert created.status_code == 201, created.content
    list_id = created.json()["id"]
    assert api.get(f"/api/v1/target-lists/{list_id}/csv/").status_code == 200
    first = api.get(f"/api/v1/target-lists/{list_id}/entries/?page_size=1")
    assert first.status_code == 200
    assert api.get(first.json()["next"]).status_code == 200  # later pages: same paging run
    manager = User.objects.create_user("manager", is_staff=True)
    manager.groups.add(Group.objects.get(name=CAMPAIGN_MANAGER))
    client.force_login(manager)
    assert client.get(reverse("admin:modelling_targetinglist_csv",
                              args=[list_id])).status_code == 200
    target = f"modelling.targetinglist {list_id}"
    assert entries() == [("create", target, "api-key:crm-write"),
                         ("export", target, "api-key:crm-write"),
                         ("export", target, "api-key:crm-write"),
                         ("export", target, "user:manager")]
    assert [e.detail["format"] for e in AuditEntry.objects.filter(action="export")] == [
        "csv", "pages", "csv"]
    external_ids = set(Customer.objects.values_list("external_id", flat=True)[:1000])
    logged = str(list(AuditEntry.objects.values_list("target", "detail")))
    assert not any(external_id in logged for external_id in external_ids)
