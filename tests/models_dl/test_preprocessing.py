import json

import numpy as np
import pandas as pd
import pytest

from models_dl.preprocessing import OutcomeScaler, TabularPreprocessor, infer_outcome_type


def test_it_standardises_numeric_columns():
    x = np.array([[1.0, 10.0], [3.0, 10.0], [5.0, 10.0]])
    out = TabularPreprocessor(log_skew_threshold=None).fit_transform(x)
    np.testing.assert_allclose(out[:, 0], [-1.224745, 0.0, 1.224745], atol=1e-6)
    np.testing.assert_allclose(out[:, 1], 0.0)  # constant column: std guarded, not NaN


def test_it_imputes_missing_values_with_the_median_and_flags_them():
    x = np.array([[1.0], [np.nan], [3.0], [100.0]])
    pre = TabularPreprocessor(log_skew_threshold=None).fit(x)
    spec = pre.columns_[0]
    assert spec.median == 3.0 and spec.missing_indicator
    out = pre.transform(np.array([[np.nan], [3.0]]))
    assert out.shape == (2, 2)
    assert out[0, 0] == out[1, 0]  # the median
    np.testing.assert_array_equal(out[:, 1], [1.0, 0.0])


def test_it_one_hot_encodes_categoricals_with_an_other_bucket(mixed_frame):
    frame, _, _ = mixed_frame
    pre = TabularPreprocessor().fit(frame)
    region = next(s for s in pre.columns_ if s.name == "region")
    assert region.kind == "categorical"
    assert sorted(region.categories) == ["east", "north", "south"]
    unseen = frame.head(3).copy()
    unseen["region"] = pd.Categorical(["west", None, "north"])
    out = pre.transform(unseen)
    block = out[:, 2:6]  # age + missing flag, then region's 3 levels + other
    np.testing.assert_array_equal(block.sum(axis=1), [1, 1, 1])
    assert block[0, 3] == 1 and block[1, 3] == 1  # unseen and missing share "other"
    assert np.isfinite(out).all()


def test_it_log_transforms_heavy_tailed_columns(mixed_frame):
    frame, _, _ = mixed_frame
    pre = TabularPreprocessor().fit(frame)
    assert next(s for s in pre.columns_ if s.name == "spend").log1p
    assert not next(s for s in pre.columns_ if s.name == "engagement").log1p


def test_its_config_is_json_and_round_trips(mixed_frame):
    frame, _, _ = mixed_frame
    pre = TabularPreprocessor().fit(frame)
    config = json.loads(json.dumps(pre.to_config()))
    again = TabularPreprocessor.from_config(config)
    np.testing.assert_array_equal(again.transform(frame), pre.transform(frame))


def test_object_arrays_with_strings_are_treated_as_categorical():
    x = np.array([[1.0, "a"], [2.0, "b"], [3.0, "a"]], dtype=object)
    pre = TabularPreprocessor().fit(x)
    assert [s.kind for s in pre.columns_] == ["numeric", "categorical"]
    assert pre.transform(x).shape == (3, 4)


def test_it_rejects_a_different_number_of_columns():
    pre = TabularPreprocessor().fit(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="columns"):
        pre.transform(np.zeros((3, 3)))


def test_outcome_type_inference():
    assert infer_outcome_type(np.array([0, 1, 1, 0])) == "binary"
    assert infer_outcome_type(np.array([0, 0, 0, 12.5, 3.0])) == "zero_inflated"
    assert infer_outcome_type(np.array([-1.0, 2.0, 0.5])) == "continuous"


def test_outcome_scaler_round_trips_and_scales_effects():
    y = np.array([1.0, 2.0, 3.0, 6.0])
    scaler = OutcomeScaler.fit(y, "continuous")
    np.testing.assert_allclose(scaler.inverse_transform(scaler.transform(y)), y, rtol=1e-6)
    assert scaler.inverse_transform_effect(np.array([1.0]))[0] == pytest.approx(y.std())
    with pytest.raises(ValueError):
        OutcomeScaler.fit(np.array([0.0, 2.0]), "binary")
