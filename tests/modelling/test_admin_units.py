"""The customer page writes each model's uplift in the unit of the metric it predicts."""

from datetime import UTC, datetime

import pytest

from experiments.models import Metric
from experiments.services import MetricSpec
from marketing.models import Event
from modelling.admin_panels import customer_scores_panel
from modelling.models import CustomerScore, ModelVersion
from tests.factories import customer_make, experiment_make

pytestmark = pytest.mark.django_db


def _scored(customer, experiment, metric: str, uplift: float) -> ModelVersion:
    version = ModelVersion.objects.create(
        campaign=experiment.campaign, experiment=experiment, kind="uplift", estimator="tarnet",
        target_metric=metric, status="ready")
    CustomerScore.objects.create(model_version=version, customer=customer, uplift=uplift,
                                 best_arm="email", uplift_by_arm={"email": uplift},
                                 scored_at=datetime(2026, 10, 1, tzinfo=UTC))
    return version


def test_the_scores_panel_writes_pp_money_and_counts_by_the_models_metric():
    experiment = experiment_make(metrics=[
        MetricSpec("purchase", Event.Kind.PURCHASE, Metric.Aggregation.CONVERTED,
                   role=Metric.Role.PRIMARY),
        MetricSpec("revenue", Event.Kind.PURCHASE, Metric.Aggregation.SUM),
        MetricSpec("orders", Event.Kind.PURCHASE, Metric.Aggregation.COUNT)])
    customer = customer_make()
    _scored(customer, experiment, "purchase", 0.021)
    _scored(customer, experiment, "revenue", 0.354)
    _scored(customer, experiment, "orders", -0.0123)
    html = customer_scores_panel(customer)
    assert "email: +2.1 pp" in html
    assert "email: +€0.35" in html and "35.4 pp" not in html
    assert "email: -0.0123 orders" in html
