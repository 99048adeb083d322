"""The seeded demo: deterministic, consistent with its own truth."""

import hashlib
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from django.core.management import call_command
from django.db.models import Avg, Count

from experiments.demo import ASSIGNED_DAYS_AGO, EXPERIMENT_KEY, demo_seed
from experiments.models import Assignment, Experiment, TrueEffect
from marketing.models import Customer, CustomerAttribute, Event, Segment
from models_dl.synthetic import make_campaign_population

pytestmark = pytest.mark.django_db
ANCHOR = datetime(2026, 10, 1, tzinfo=UTC)


def digest() -> str:
    """A fingerprint of everything seeded, independent of database ids."""
    h = hashlib.sha256()
    for row in Customer.objects.order_by("external_id").values_list("external_id", "attributes"):
        h.update(repr((row[0], sorted(row[1].items()))).encode())
    for row in (Event.objects.order_by("customer__external_id", "occurred_at", "kind", "value")
                .values_list("customer__external_id", "kind", "occurred_at", "value")):
        h.update(repr(row).encode())
    for row in (Assignment.objects.order_by("customer__external_id")
                .values_list("customer__external_id", "arm__name", "assigned_at")):
        h.update(repr(row).encode())
    return h.hexdigest()


def wipe():
    Assignment.objects.all().delete()  # arms are protected while assigned
    Experiment.objects.all().delete()
    Customer.objects.all().delete()


def test_the_same_seed_gives_the_same_data_and_another_seed_does_not():
    demo_seed(customers=300, seed=11, anchor=ANCHOR)
    first = digest()
    wipe()
    demo_seed(customers=300, seed=11, anchor=ANCHOR)
    assert digest() == first
    wipe()
    demo_seed(customers=300, seed=12, anchor=ANCHOR)
    assert digest() != first


def test_the_demo_matches_its_generator_and_stores_the_truth():
    result = demo_seed(customers=500, seed=3, anchor=ANCHOR)
    population = make_campaign_population(500, seed=3, n_treatments=2)
    experiment = Experiment.objects.get(key=EXPERIMENT_KEY)
    assert result.customers == Customer.objects.count() == 500
    assert result.events == Event.objects.count()
    sizes = dict(Assignment.objects.values_list("arm__name").annotate(n=Count("id")))
    expected = np.bincount(population.treatment, minlength=3)
    assert sizes == {"control": expected[0], "email": expected[1], "email_discount": expected[2]}
    # Outcome purchases fall in the attribution window after assignment.
    assigned_at = ANCHOR - timedelta(days=ASSIGNED_DAYS_AGO)
    after = Event.objects.filter(kind="purchase", occurred_at__gte=assigned_at).count()
    assert after == int(population.conversion.sum())
    truth = dict(TrueEffect.objects.values_list("arm__name").annotate(a=Avg("conversion_uplift")))
    assert truth["email"] == pytest.approx(population.true_conversion_uplift[:, 0].mean())
    assert truth["email_discount"] == pytest.approx(population.true_conversion_uplift[:, 1].mean())
    assert (population.true_conversion_uplift.min(axis=1) < 0).any()  # some are hurt
    assert experiment.status == "stopped" and experiment.breakdown_segments.count() == 3
    assert set(CustomerAttribute.objects.values_list("key", flat=True)) >= {"age", "region"}
    assert Segment.objects.count() == 3


def test_the_command_refuses_a_second_seed_unless_told_to_skip(capsys):
    call_command("seed_demo", "--customers", "50", "--anchor", "2026-10-01")
    call_command("seed_demo", "--customers", "50", "--if-empty")
    assert "already seeded" in capsys.readouterr().out
    from django.core.management.base import CommandError
    with pytest.raises(CommandError):
        call_command("seed_demo", "--customers", "50")


@pytest.mark.django_db(transaction=True)  # on_commit hooks fire as in make run
def test_the_demo_pipeline_analyses_trains_scores_and_targets(settings, tmp_path, capsys):
    from experiments.models import AnalysisResult
    from modelling.models import CustomerScore, ModelVersion, TargetingList

    settings.MODEL_ARTIFACT_DIR = tmp_path / "models"
    demo_seed(customers=600, seed=13, anchor=ANCHOR)
    call_command("demo_pipeline", "--max-epochs", "2")
    out = capsys.readouterr().out
    assert "Analysis of demo_spring: 600 customers" in out
    assert AnalysisResult.objects.count() == 1
    champion = ModelVersion.objects.get(is_champion=True)
    assert champion.estimator == "default" and "causalml_X" in champion.metrics["baselines"]
    assert CustomerScore.objects.filter(model_version=champion).count() == 600
    assert TargetingList.objects.get().model_version == champion
    assert "Targeting list" in out

    # a second make run reuses every step: no new analysis, model, scores or list
    scored_at = set(CustomerScore.objects.values_list("id", flat=True))
    versions = ModelVersion.objects.count()
    call_command("demo_pipeline", "--max-epochs", "2")
    out = capsys.readouterr().out
    assert "Reusing champion model version" in out and "Reusing targeting list" in out
    assert AnalysisResult.objects.count() == 1 and ModelVersion.objects.get(is_champion=True) == champion
    assert ModelVersion.objects.count() == versions
    assert set(CustomerScore.objects.values_list("id", flat=True)) == scored_at
    assert TargetingList.objects.count() == 1
