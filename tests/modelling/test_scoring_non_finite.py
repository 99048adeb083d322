"""A prediction that is not finite is never written; absurd stored attributes do not poison scoring."""

import json

import numpy as np
import pandas as pd
import pytest

from core.db.bulk import frame_insert
from modelling.models import CustomerScore, ModelVersion
from modelling.scoring import _score_frame
from tests.factories import T0, customer_make
from tests.modelling.test_scoring import FixedOutcomes, _version

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("kind", [ModelVersion.Kind.UPLIFT, ModelVersion.Kind.RESPONSE])
def test_customers_with_a_non_finite_prediction_get_no_score(kind, caplog):
    version = _version(kind)
    people = [customer_make() for _ in range(3)]
    model = FixedOutcomes([[0.1, 0.2, 0.3], [np.nan, 0.2, 0.3], [0.2, np.inf, 0.1]])
    frame = _score_frame(version, model, np.array([c.id for c in people]),
                         pd.DataFrame(index=range(3)), ["control", "email", "sms"], T0)
    written = frame_insert(CustomerScore, frame)
    stored = set(CustomerScore.objects.filter(model_version=version)
                 .values_list("customer_id", flat=True))
    if kind == ModelVersion.Kind.UPLIFT:
        assert written == 1 and stored == {people[0].id}
    else:  # a response model reads the first column only
        assert written == 2 and stored == {people[0].id, people[2].id}
    assert "non-finite predictions" in caplog.text


class Guardrail(FixedOutcomes):
    pass


def test_a_non_finite_guardrail_effect_drops_the_row_too():
    version = _version(ModelVersion.Kind.UPLIFT)
    people = [customer_make() for _ in range(2)]
    model = FixedOutcomes([[0.1, 0.2, 0.3], [0.1, 0.2, 0.3]])
    guard = Guardrail([[0.0, 0.1, 0.1], [0.0, np.nan, 0.1]])
    frame = _score_frame(version, model, np.array([c.id for c in people]),
                         pd.DataFrame(index=range(2)), ["control", "email", "sms"], T0,
                         guardrails={"unsubscribes": guard})
    assert frame["customer_id"].tolist() == [people[0].id]
    assert json.loads(frame["guardrail_by_arm"][0]) == {"unsubscribes": {"email": 0.1,
                                                                        "sms": 0.1}}
