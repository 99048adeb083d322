"""Score rows written column-wise hold exactly the model's predictions."""

import numpy as np
import pandas as pd
import pytest

from core.db.bulk import frame_insert
from modelling.models import CustomerScore, ModelVersion
from modelling.scoring import _score_frame
from tests.factories import T0, campaign_make, customer_make

pytestmark = pytest.mark.django_db


class FixedOutcomes:
    """A stand-in model: expected outcome under control, 'email' and 'sms'."""

    def __init__(self, outcomes):
        self.outcomes = np.asarray(outcomes, dtype=float)

    def predict_outcomes(self, X):
        return self.outcomes[: len(X)]

    def predict_proba(self, X):
        p = self.outcomes[: len(X), 0]
        return np.column_stack([1 - p, p])


def _version(kind):
    return ModelVersion.objects.create(campaign=campaign_make(), kind=kind, estimator="test",
                                       target_metric="conversion", feature_spec={})


def test_uplift_scores_round_trip_through_the_database():
    version = _version(ModelVersion.Kind.UPLIFT)
    people = [customer_make() for _ in range(3)]
    model = FixedOutcomes([[0.10, 0.25, 0.05], [0.30, 0.20, 0.35], [0.5, 0.5, 0.5]])
    ids = np.array([c.id for c in people])
    frame = _score_frame(version, model, ids, pd.DataFrame(index=range(3)),
                         ["control", "email", "sms"], T0)
    assert frame_insert(CustomerScore, frame) == 3
    stored = {s.customer_id: s for s in CustomerScore.objects.filter(model_version=version)}
    first, second, third = (stored[c.id] for c in people)
    assert first.best_arm == "email" and first.uplift == pytest.approx(0.15)
    assert first.uplift_by_arm == {"email": 0.15, "sms": -0.05}
    assert second.best_arm == "sms" and second.uplift == pytest.approx(0.05)
    assert second.uplift_by_arm == {"email": -0.1, "sms": 0.05}
    assert third.uplift == 0.0 and third.response == 0.5
    assert first.response == pytest.approx(0.10) and first.scored_at == T0


def test_response_scores_leave_uplift_empty_not_missing_text():
    version = _version(ModelVersion.Kind.RESPONSE)
    person = customer_make()
    frame = _score_frame(version, FixedOutcomes([[0.42]]), np.array([person.id]),
                         pd.DataFrame(index=range(1)), [], T0)
    frame_insert(CustomerScore, frame)
    score = CustomerScore.objects.get(model_version=version)
    assert score.uplift is None and score.best_arm == "" and score.uplift_by_arm == {}
    assert score.response == pytest.approx(0.42)


def test_frame_insert_keeps_nulls_non_ascii_text_and_times_exact():
    version = _version(ModelVersion.Kind.UPLIFT)
    people = [customer_make() for _ in range(3)]
    moments = [T0, T0 + pd.Timedelta(microseconds=1), pd.Timestamp("1999-12-31 23:59:59.5Z")]
    frame = pd.DataFrame({
        "model_version_id": version.id, "customer_id": [c.id for c in people],
        "uplift": [0.5, np.nan, -1e-300], "best_arm": ["e-mail ✉", "", "ß" * 64],
        "uplift_by_arm": ['{"e-mail ✉": 0.5}', "{}", '{"ß": -1e-300}'],
        "response": [np.nan, 1.0, 0.0], "scored_at": moments})
    assert frame_insert(CustomerScore, frame) == 3
    rows = list(CustomerScore.objects.filter(model_version=version).order_by("customer_id")
                .values_list("uplift", "best_arm", "uplift_by_arm", "response", "scored_at"))
    assert rows[0][:4] == (0.5, "e-mail ✉", {"e-mail ✉": 0.5}, None)
    assert rows[1][:4] == (None, "", {}, 1.0)
    assert rows[2][:4] == (-1e-300, "ß" * 64, {"ß": -1e-300}, 0.0)
    assert [r[4] for r in rows] == [m.to_pydatetime() for m in map(pd.Timestamp, moments)]


def test_scoring_a_segment_replaces_only_its_members_scores(monkeypatch):
    """A segment's scoring once deleted the whole id range and wrote back only the members."""
    from marketing.services import segment_create
    from modelling import scoring
    from modelling.scoring import ChunkPlan, score_chunk
    from tests.factories import attributes_declare

    attributes_declare()
    version = _version(ModelVersion.Kind.UPLIFT)
    version.metrics = {"arm_names": ["control", "email", "sms"]}
    version.save()
    people = [customer_make(age=age) for age in (20, 30, 40, 50)]
    old = pd.DataFrame({"model_version_id": version.id, "customer_id": [c.id for c in people],
                        "uplift": -1.0, "best_arm": "old", "uplift_by_arm": "{}",
                        "response": 0.0, "scored_at": T0})
    frame_insert(CustomerScore, old)
    model = FixedOutcomes([[0.10, 0.25, 0.05]] * 4)
    monkeypatch.setattr(scoring, "_model", lambda version_id, checksum: model)
    monkeypatch.setattr(scoring, "_guardrail_models", lambda version_id, checksum: {})
    over_35 = segment_create(key="over_35", name="Over 35",
                             rule={"attr": "age", "op": "gt", "value": 35})

    written = score_chunk(version=version, chunk=ChunkPlan(people[0].id - 1, people[-1].id),
                          cutoff=T0 + pd.Timedelta(days=1), segment=over_35)
    assert written == 2
    stored = dict(CustomerScore.objects.filter(model_version=version)
                  .values_list("customer_id", "best_arm"))
    assert stored == {people[0].id: "old", people[1].id: "old",
                      people[2].id: "email", people[3].id: "email"}
