"""Target lists from scores: consent, economics, budget, CSV."""

import csv
import io
from datetime import UTC, datetime

import pytest
from django.core.exceptions import ValidationError

from experiments.demo import demo_seed
from experiments.models import Experiment
from marketing.models import Customer
from modelling.models import CustomerScore, TargetingEntry
from modelling.scoring import score_chunk, score_plan
from modelling.targeting import targeting_list_create, targeting_list_csv
from modelling.training import uplift_model_train

pytestmark = pytest.mark.django_db


@pytest.fixture
def scored(settings, tmp_path):
    settings.MODEL_ARTIFACT_DIR = tmp_path / "models"
    demo_seed(customers=900, seed=2, anchor=datetime(2026, 10, 1, tzinfo=UTC))
    experiment = Experiment.objects.get(key="demo_spring")
    with pytest.raises(ValidationError, match="no champion"):
        targeting_list_create(campaign=experiment.campaign)
    (version,) = uplift_model_train(experiment=experiment, estimators=["tarnet"], baselines=[],
                                    estimator_params={"tarnet": {"max_epochs": 3}})
    cutoff = datetime(2026, 10, 1, tzinfo=UTC)
    for chunk in score_plan(chunk_size=1_000):
        score_chunk(version=version, chunk=chunk, cutoff=cutoff)
    Customer.objects.filter(id__in=Customer.objects.order_by("id").values("id")[:100]).update(
        marketing_consent=False)
    return experiment.campaign, version


def test_the_list_holds_profitable_consenting_customers_best_first(scored):
    campaign, version = scored
    # Unpriced unsubscribes (the demo campaign prices them): profit is uplift * 45 - 0.05.
    target = targeting_list_create(campaign=campaign, cost_per_contact=0.05,
                                   value_per_conversion=45, budget=None,
                                   harm_prices={"unsubscribe": 0.0})
    entries = list(TargetingEntry.objects.filter(targeting_list=target).order_by("rank"))
    assert target.size == len(entries) > 0
    profits = [e.expected_profit for e in entries]
    assert profits == sorted(profits, reverse=True) and min(profits) > 0
    assert all(e.expected_profit == pytest.approx(e.uplift * 45 - 0.05) for e in entries)
    assert target.expected_profit == pytest.approx(sum(profits))
    consenting = set(Customer.objects.filter(marketing_consent=True).values_list("id", flat=True))
    assert {e.customer_id for e in entries} <= consenting
    scores = {s.customer_id: s for s in CustomerScore.objects.filter(model_version=version)}
    assert all(e.arm == scores[e.customer_id].best_arm for e in entries)
    assert target.parameters["eligible"] == 800


def test_budget_caps_the_list_and_the_csv_streams_it(scored):
    campaign, _ = scored
    target = targeting_list_create(campaign=campaign, cost_per_contact=0.05,
                                   value_per_conversion=45, budget=1.0)
    assert 0 < target.size <= 20 and target.total_cost <= 1.0  # budget / cost = 20
    rows = list(csv.reader(io.StringIO("".join(targeting_list_csv(target, chunk_size=7)))))
    assert rows[0] == ["rank", "customer_external_id", "arm", "predicted_uplift",
                       "expected_profit", "uplift_email", "uplift_email_discount"]
    assert [int(r[0]) for r in rows[1:]] == list(range(1, target.size + 1))
    assert all(r[1].startswith("demo-") for r in rows[1:])


def test_bad_economics_are_refused(scored):
    campaign, _ = scored
    with pytest.raises(ValidationError, match="budget"):
        targeting_list_create(campaign=campaign, budget=-3)
