"""Retraining after an erasure learns nothing from the erased customer's rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from experiments.models import Assignment
from marketing.privacy import customer_erase
from modelling.training import TrainingData, _without_erased
from tests.factories import T0, customer_make, experiment_make

pytestmark = pytest.mark.django_db


def test_erased_customers_rows_are_dropped_from_training_data():
    experiment = experiment_make()
    control, email = experiment.arms.order_by("id")
    customers = [customer_make() for _ in range(4)]
    for i, c in enumerate(customers):
        Assignment.objects.create(experiment=experiment, customer=c,
                                  arm=control if i % 2 else email, assigned_at=T0)
    ids = np.array([c.pk for c in customers], dtype=np.int64)
    data = TrainingData(ids, pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0]}), np.array([1, 0, 1, 0]),
                        np.array([0.0, 1.0, 0.0, 1.0]), ["control", "email"],
                        np.arange(8.0).reshape(4, 2))
    assert _without_erased(experiment, data) is data  # nobody erased: untouched
    customer_erase(customer=customers[1])
    kept = _without_erased(experiment, data)
    assert kept.customer_ids.tolist() == [customers[0].pk, customers[2].pk, customers[3].pk]
    assert kept.X["x"].tolist() == [1.0, 3.0, 4.0]
    assert kept.treatment.tolist() == [1, 1, 0] and kept.y.tolist() == [0.0, 0.0, 1.0]
    assert kept.true_effect.tolist() == [[0.0, 1.0], [4.0, 5.0], [6.0, 7.0]]
