"""Why this customer: GET /customers/<crm_id>/explanation/, and a version's stored drivers
and rules in GET /model-versions/<id>/."""

import pytest

from marketing.models import Customer
from marketing.privacy import customer_erase
from modelling.api.views import EXPLANATION_EXAMPLE
from modelling.models import CustomerScore, ModelVersion
from tests.factories import campaign_make

pytestmark = pytest.mark.django_db


def url(customer: Customer | str) -> str:
    external_id = customer if isinstance(customer, str) else customer.external_id
    return f"/api/v1/customers/{external_id}/explanation/"


def test_the_explanation_has_the_documented_shape_and_matches_the_model(api, champion):
    score = CustomerScore.objects.filter(model_version=champion).select_related(
        "customer").order_by("-uplift").first()
    response = api.get(url(score.customer))
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == set(EXPLANATION_EXAMPLE)
    assert (body["model_version"], body["campaign"]) == (champion.id, champion.campaign.key)
    assert (body["cost_per_contact"], body["value_per_conversion"]) == (0.15, 45.0)
    assert [a["arm"] for a in body["arms"]] == ["email", "email_discount"]
    for arm in body["arms"]:
        assert set(arm) == set(EXPLANATION_EXAMPLE["arms"][0])
        # targeting's profit: the demo prices an extra unsubscribe at 30, and the
        # guardrail model predicts at most half a percentage point of them either way
        assert arm["expected_profit"] == pytest.approx(arm["uplift"] * 45 - 0.15, abs=30 * 0.005)
        assert len(arm["features"]) == 5
        assert set(arm["features"][0]) == {"feature", "label", "value", "contribution"}
    best = max(body["arms"], key=lambda a: a["expected_profit"])
    assert body["chosen_arm"] == (best["arm"] if best["expected_profit"] > 0 else "no contact")
    assert body["rule"]["text"] in champion.explanations["rules"]["text"]
    # scored as of the demo's anchor, explained as of now: the same, or said to be stale
    assert body["score"]["best_arm"] == score.best_arm
    if not body["score"]["consistent"]:
        assert any("is stale" in note for note in body["notes"])
    # the version can be named; a reader key may read it
    named = api.get(url(score.customer), {"model_version": champion.id}).json()
    assert named["arms"][0]["uplift"] == pytest.approx(body["arms"][0]["uplift"], abs=1e-6)


def test_unknown_and_erased_customers_are_404(api, champion):
    assert api.get(url("nobody")).status_code == 404
    customer = Customer.objects.order_by("id").first()
    customer_erase(customer=customer)
    response = api.get(url(customer))
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("params, field", [
    ({"model_version": "seven"}, "model_version"), ({"model_version": 10**9}, "model_version"),
    ({"campaign": "no_such_campaign"}, "campaign"),
])
def test_a_bad_version_or_campaign_is_a_400_naming_it(api, champion, params, field):
    customer = Customer.objects.order_by("id").first()
    response = api.get(url(customer), params)
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == [field]


def test_without_a_champion_the_answer_says_to_train_one(api, champion):
    customer = Customer.objects.order_by("id").first()
    other = campaign_make(key="winter")
    response = api.get(url(customer), {"campaign": other.key})
    assert response.status_code == 400
    assert "no champion uplift model" in response.json()["error"]["fields"]["campaign"][0]
    ModelVersion.objects.update(is_champion=False)
    response = api.get(url(customer))
    assert response.status_code == 400
    assert "train one first" in response.json()["error"]["fields"]["model_version"][0]
    response_model = ModelVersion.objects.create(
        campaign=champion.campaign, kind="response", estimator="propensity_to_buy",
        target_metric="purchase_30d", status="ready")
    response = api.get(url(customer), {"model_version": response_model.id})
    assert response.status_code == 400
    assert "ready uplift model" in response.json()["error"]["fields"]["model_version"][0]


def test_a_read_key_may_read_an_explanation(reader, champion):
    customer = Customer.objects.order_by("id").first()
    assert reader.get(url(customer)).status_code == 200


def test_the_version_detail_has_its_drivers_and_rules(api, champion):
    body = api.get(f"/api/v1/model-versions/{champion.id}/").json()
    explanations = body["explanations"]
    assert explanations["method"] == "integrated_gradients"
    assert explanations["n_rows"] == body["rows_test"] == 120
    assert set(explanations["drivers"]["ranking"]) == {"email", "email_discount"}
    assert explanations["rules"]["text"] == champion.explanations["rules"]["text"]
    summary = api.get("/api/v1/model-versions/").json()["results"][0]
    assert "explanations" not in summary
