"""Customer scores: a model version's, in cursor pages, and a customer's across versions."""

import pytest

from marketing.models import Customer
from modelling.models import CustomerScore, ModelVersion
from tests.factories import customer_make

pytestmark = pytest.mark.django_db


def all_pages(client, path: str, **params) -> list[dict]:
    rows, response = [], client.get(path, params)
    while True:
        assert response.status_code == 200, response.content
        rows += response.json()["results"]
        if not response.json()["next"]:
            return rows
        response = client.get(response.json()["next"])


def test_a_versions_scores_cover_every_customer_with_the_best_arm_first(api, champion):
    rows = all_pages(api, f"/api/v1/model-versions/{champion.id}/scores/", page_size=250)
    assert len(rows) == len({r["customer"] for r in rows}) == 600
    for row in rows[:50]:
        best = max(row["uplift_by_arm"], key=row["uplift_by_arm"].get)
        assert row["best_arm"] == best
        assert row["uplift"] == pytest.approx(row["uplift_by_arm"][best], abs=1e-6)
        assert 0 <= row["response"] <= 1 and row["scored_at"] == "2026-10-01T00:00:00Z"
    stored = CustomerScore.objects.get(model_version=champion,
                                       customer__external_id=rows[0]["customer"])
    assert (rows[0]["uplift"], rows[0]["response"]) == (stored.uplift, stored.response)


def test_min_uplift_keeps_the_customers_at_or_above_it(api, champion):
    uplifts = sorted(CustomerScore.objects.filter(model_version=champion)
                     .values_list("uplift", flat=True))
    median = uplifts[300]
    rows = all_pages(api, f"/api/v1/model-versions/{champion.id}/scores/",
                     min_uplift=median, page_size=1000)
    assert len(rows) == sum(u >= median for u in uplifts) >= 300
    assert min(r["uplift"] for r in rows) == median


def test_bad_filters_and_unknown_versions(api, champion):
    response = api.get(f"/api/v1/model-versions/{champion.id}/scores/", {"min_uplift": "big"})
    assert response.status_code == 400 and "min_uplift" in response.json()["error"]["fields"]
    assert api.get(f"/api/v1/model-versions/{champion.id + 1}/scores/").status_code == 404


def test_a_customers_scores_come_one_per_model_version_newest_first(api, champion):
    customer = Customer.objects.order_by("id").first()
    response_model = ModelVersion.objects.create(
        campaign=champion.campaign, kind="response", estimator="propensity_to_buy",
        target_metric="purchase_30d", status="ready")
    CustomerScore.objects.create(model_version=response_model, customer=customer,
                                 response=0.375, scored_at="2026-10-02T00:00:00Z")
    body = api.get(f"/api/v1/customers/{customer.external_id}/scores/").json()
    uplift_score = CustomerScore.objects.get(model_version=champion, customer=customer)
    assert body["results"] == [
        {"model_version": response_model.id, "kind": "response",
         "campaign": champion.campaign.key, "is_champion": False, "uplift": None,
         "best_arm": "", "uplift_by_arm": {}, "response": 0.375,
         "scored_at": "2026-10-02T00:00:00Z"},
        {"model_version": champion.id, "kind": "uplift", "campaign": champion.campaign.key,
         "is_champion": True, "uplift": uplift_score.uplift, "best_arm": uplift_score.best_arm,
         "uplift_by_arm": uplift_score.uplift_by_arm, "response": uplift_score.response,
         "scored_at": "2026-10-01T00:00:00Z"},
    ]


def test_a_customer_without_scores_has_an_empty_list_and_an_unknown_one_is_a_404(api):
    customer = customer_make()
    assert api.get(f"/api/v1/customers/{customer.external_id}/scores/").json()["results"] == []
    response = api.get("/api/v1/customers/nobody/scores/")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


def test_a_read_key_may_read_scores(reader, champion):
    assert reader.get(f"/api/v1/model-versions/{champion.id}/scores/").status_code == 200
    assert reader.post(f"/api/v1/model-versions/{champion.id}/score/").status_code == 403
