"""Follow-up experiments through the API and the admin: the same services behind both."""

import csv
import io

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from modelling.models import TargetingFollowUp
from tests.modelling.test_followup import N, target  # noqa: F401 - the fixture

pytestmark = pytest.mark.django_db


def test_create_start_page_the_plan_and_analyse(api, target):  # noqa: F811
    path = f"/api/v1/target-lists/{target.id}/follow-ups/"
    bad = api.post(path, {"shares": {"policy": 0.5, "random": 0.5, "holdout": 0}},
                   format="json")
    assert bad.status_code == 400
    assert list(bad.json()["error"]["fields"]) == ["shares.holdout"]
    response = api.post(path, {}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "draft" and body["targeting_list"] == target.id
    assert body["shares"] == {"policy": 0.45, "random": 0.45, "holdout": 0.1}
    assert body["plan"]["eligible"] == N and body["summary"] == "Not analysed yet."
    assert api.get(f"/api/v1/follow-ups/{body['id']}/plan/").json()["results"] == []

    started = api.post(f"/api/v1/follow-ups/{body['id']}/start/")
    assert started.status_code == 200 and started.json()["status"] == "running"
    entries, page = [], f"/api/v1/follow-ups/{body['id']}/plan/?page_size=500"
    while page:
        answer = api.get(page).json()
        entries += answer["results"]
        page = answer["next"]
    assert len(entries) == len({e["customer"] for e in entries}) == N
    download = api.get(f"/api/v1/follow-ups/{body['id']}/plan/csv/", HTTP_ACCEPT="text/csv")
    assert download["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.reader(io.StringIO(b"".join(download.streaming_content).decode())))
    assert rows[1:] == [[e["customer"], e["group"], e["offer"] or ""] for e in entries]

    analysed = api.post(f"/api/v1/follow-ups/{body['id']}/analyse/").json()
    groups = analysed["analysis"]["groups"]
    assert sum(g["customers"] for g in groups.values()) == N
    assert analysed["summary"].startswith("The policy earned")
    assert api.get(f"/api/v1/follow-ups/{body['id']}/").json() == analysed


def test_the_admin_action_creates_the_same_follow_up_and_shows_its_result(client, target):  # noqa: F811
    user = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw-123456")
    client.force_login(user)
    client.post(reverse("admin:modelling_targetinglist_changelist"),
                {"action": "follow_up", "_selected_action": [target.id]})
    follow_up = TargetingFollowUp.objects.get(targeting_list=target)
    assert follow_up.experiment.status == "draft" and follow_up.plan["eligible"] == N
    changelist = reverse("admin:modelling_targetingfollowup_changelist")
    for action in ("start", "analyse"):
        client.post(changelist, {"action": action, "_selected_action": [follow_up.id]})
    follow_up.refresh_from_db()
    assert follow_up.experiment.status == "running" and follow_up.analysis
    html = client.get(changelist).content.decode()
    assert "The policy earned" in html
    download = client.get(reverse("admin:modelling_targetingfollowup_plan_csv",
                                  args=[follow_up.id]))
    assert len(b"".join(download.streaming_content).decode().splitlines()) == N + 1
    assert client.get(reverse("admin:modelling_targetingfollowup_change",
                              args=[follow_up.id])).status_code == 200
