"""Analysis results: queue an analysis, read the history, the latest and one by id."""

import pytest
from django.db.models import Count

from core.models import TaskRun
from experiments.analysis import experiment_analyse
from experiments.models import AnalysisResult, Assignment
from experiments.results import analysis_payload_public
from tests.factories import experiment_make

pytestmark = pytest.mark.django_db


def results(key: str) -> str:
    return f"/api/v1/experiments/{key}/results/"


def test_analyse_queues_a_task_whose_result_reads_back_in_full(
        api, demo_experiment, django_capture_on_commit_callbacks):
    key = demo_experiment.key
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(f"/api/v1/experiments/{key}/analyse/")
    assert response.status_code == 202, response.content
    queued = response.json()
    assert (queued["name"], queued["status"], queued["params"]) == (
        "experiment_analyse", "queued", {"experiment_id": demo_experiment.id})

    task = api.get(f"/api/v1/tasks/{queued['id']}/").json()
    assert task["status"] == "succeeded", task["error"]
    latest = api.get(f"{results(key)}latest/")
    assert latest.status_code == 200
    body = latest.json()
    assert body["id"] == task["result"]["analysis_result_id"]
    assert body["task_run"] == queued["id"] and body["experiment"] == key
    # Sample sizes are the stored assignments per arm, counted here independently.
    counts = dict(Assignment.objects.filter(experiment=demo_experiment)
                  .values_list("arm__name").annotate(n=Count("id")))
    assert body["payload"]["sample_sizes"] == counts
    assert sum(counts.values()) == body["customers"] == 600
    assert body["decision"] == body["payload"]["decision"]["action"] == task["result"]["decision"]
    assert body["decision"] == "ship"  # the demo (seed 1) plants a winning treatment
    assert body["decision_reasons"] == body["payload"]["decision"]["reasons"]
    assert body["srm_p_value"] == body["payload"]["srm"]["p_value"]
    assert [m["metric"] for m in body["payload"]["metrics"]] == [
        "conversion", "revenue", "unsubscribes"]


def test_the_history_is_newest_first_in_cursor_pages_without_payloads(api, demo_experiment):
    first = experiment_analyse(experiment=demo_experiment)
    second = experiment_analyse(experiment=demo_experiment)
    page = api.get(results(demo_experiment.key), {"page_size": 1}).json()
    assert [r["id"] for r in page["results"]] == [second.id]
    assert set(page["results"][0]) == {"id", "created_at", "customers", "decision",
                                       "decision_reasons", "srm_p_value"}
    older = api.get(page["next"]).json()
    assert [r["id"] for r in older["results"]] == [first.id] and older["next"] is None
    assert older["results"][0]["customers"] == first.customers == 600
    assert api.get(f"{results(demo_experiment.key)}latest/").json()["id"] == second.id


def test_a_result_is_found_by_id_only_under_its_own_experiment(api, demo_experiment):
    result = experiment_analyse(experiment=demo_experiment)
    body = api.get(f"{results(demo_experiment.key)}{result.id}/").json()
    # As stored, with small cells suppressed (experiments.results.analysis_payload_public).
    assert body["id"] == result.id and body["payload"] == analysis_payload_public(result.payload)
    other = experiment_make()
    assert api.get(f"{results(other.key)}{result.id}/").status_code == 404
    assert api.get(f"{results(demo_experiment.key)}{result.id + 1}/").status_code == 404


def test_latest_is_a_404_until_an_analysis_exists(api):
    experiment = experiment_make()
    response = api.get(f"{results(experiment.key)}latest/")
    assert response.status_code == 404
    assert response.json()["error"] == {
        "code": "not_found", "message": f"No analysis of experiment '{experiment.key}' yet.",
        "fields": {}, "rows": []}
    assert api.get(results(experiment.key)).json()["results"] == []


@pytest.mark.parametrize("method, suffix", [
    ("post", "analyse/"), ("get", "results/"), ("get", "results/latest/"), ("get", "results/1/"),
])
def test_an_unknown_experiment_is_a_404(api, method, suffix):
    response = getattr(api, method)(f"/api/v1/experiments/nope/{suffix}")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    assert not TaskRun.objects.exists() and not AnalysisResult.objects.exists()


def test_a_read_key_reads_results_but_cannot_queue_an_analysis(reader, demo_experiment):
    experiment_analyse(experiment=demo_experiment)
    assert reader.get(f"{results(demo_experiment.key)}latest/").status_code == 200
    response = reader.post(f"/api/v1/experiments/{demo_experiment.key}/analyse/")
    assert response.status_code == 403 and not TaskRun.objects.exists()
