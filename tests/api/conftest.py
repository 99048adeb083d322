"""API test clients: one per credential kind, a clean throttle cache, and the
seeded demo with a trained, scored champion for the model endpoints."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from core.api_keys import api_key_create
from core.models import ApiKey
from experiments.models import Experiment
from modelling.models import ModelVersion
from tests.factories import attributes_declare


@pytest.fixture(autouse=True)
def _clean_throttle_counts():
    cache.clear()
    yield
    cache.clear()


def client_with_key(scope: str) -> APIClient:
    _, raw = api_key_create(name=f"crm-{scope}", scope=scope)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    return client


@pytest.fixture
def api(db) -> APIClient:
    """A client holding a write-scope API key, with the test attributes declared."""
    attributes_declare()
    return client_with_key(ApiKey.Scope.WRITE)


@pytest.fixture
def reader(db) -> APIClient:
    return client_with_key(ApiKey.Scope.READ)


@pytest.fixture
def privacy(db) -> APIClient:
    """A client holding a privacy-scope key: may export and erase personal data."""
    attributes_declare()
    return client_with_key(ApiKey.Scope.PRIVACY)


def rows_of(response) -> dict[int, dict]:
    """{index: errors} of a rows_rejected response."""
    body = response.json()["error"]
    assert body["code"] == "rows_rejected", body
    return {row["index"]: row["errors"] for row in body["rows"]}


DEMO_ANCHOR = datetime(2026, 10, 1, tzinfo=UTC)


@pytest.fixture
def demo_experiment(db, settings, tmp_path) -> Experiment:
    """The seeded demo: 600 customers in the stopped three-arm experiment demo_spring."""
    from experiments.demo import demo_seed

    settings.MODEL_ARTIFACT_DIR = tmp_path / "models"
    seeded = demo_seed(customers=600, seed=1, anchor=DEMO_ANCHOR)
    return Experiment.objects.get(id=seeded.experiment_id)


@pytest.fixture
def champion(demo_experiment) -> ModelVersion:
    """A TARNet trained on the demo (its campaign's champion) that scored every customer."""
    from modelling.scoring import score_chunk, score_plan
    from modelling.training import uplift_model_train

    (version,) = uplift_model_train(experiment=demo_experiment, estimators=["tarnet"],
                                    baselines=[], estimator_params={"tarnet": {"max_epochs": 2}})
    assert version.is_champion, version.status_reason
    for chunk in score_plan(chunk_size=1_000):
        score_chunk(version=version, chunk=chunk, cutoff=DEMO_ANCHOR)
    return version
