"""LightGBM baseline, hurdle revenue model, autoencoder embedding: fit, predict, round-trip."""

import numpy as np
import pandas as pd
import pytest

from models_dl.behaviour import BoostedBinaryClassifier, HurdleRevenueRegressor
from models_dl.embedding import TabularAutoencoder, nearest_centre


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    n = 2_000
    X = pd.DataFrame({"visits": rng.poisson(3, n).astype(float), "basket": rng.gamma(2, 20, n),
                      "region": rng.choice(["north", "south"], n)})
    p_buy = 1 / (1 + np.exp(-(X["visits"].to_numpy() - 3)))
    buys = rng.random(n) < p_buy
    revenue = np.where(buys, X["basket"].to_numpy() * rng.lognormal(0, 0.2, n), 0.0)
    return X, buys.astype(float), revenue, p_buy


def test_the_hurdle_is_p_buy_times_the_amount_and_survives_a_round_trip(data, tmp_path):
    X, _, revenue, p_buy = data
    model = HurdleRevenueRegressor(n_estimators=60).fit(X, revenue)
    p, amount = model.predict_parts(X)
    assert np.allclose(model.predict(X), p * amount)
    assert np.corrcoef(p, p_buy)[0, 1] > 0.8  # learns who buys
    # among buyers the amount tracks the basket (the gamma part)
    spent = revenue > 0
    assert np.corrcoef(amount[spent], X["basket"].to_numpy()[spent])[0, 1] > 0.8
    assert model.predict(X).sum() == pytest.approx(revenue.sum(), rel=0.1)
    loaded = HurdleRevenueRegressor.load(model.save(tmp_path / "hurdle"))
    assert np.allclose(loaded.predict(X), model.predict(X))
    with pytest.raises(ValueError, match="non-negative"):
        HurdleRevenueRegressor().fit(X, -revenue - 1)


def test_the_boosted_classifier_round_trips_and_refuses_other_folders(data, tmp_path):
    X, y, revenue, _ = data
    model = BoostedBinaryClassifier(n_estimators=40).fit(X, y)
    folder = model.save(tmp_path / "lgbm")
    assert np.allclose(BoostedBinaryClassifier.load(folder).predict_proba(X),
                       model.predict_proba(X))
    hurdle = HurdleRevenueRegressor(n_estimators=20).fit(X, revenue).save(tmp_path / "h")
    with pytest.raises(ValueError, match="does not hold"):
        BoostedBinaryClassifier.load(hurdle)


def test_the_autoencoder_code_round_trips_and_points_go_to_the_nearest_centre(data, tmp_path):
    X = data[0]
    model = TabularAutoencoder(max_epochs=5).fit(X)
    assert model.loss_history_[-1] < model.loss_history_[0]
    code = model.transform(X)
    assert code.shape == (len(X), 4)
    loaded = TabularAutoencoder.load(model.save(tmp_path / "ae"))
    assert np.allclose(loaded.transform(X), code, atol=1e-6)
    centres = np.array([[0.0, 0.0], [10.0, 0.0]])
    assert nearest_centre(np.array([[1.0, 1.0], [9.0, -2.0], [4.9, 0]]), centres).tolist() == [
        0, 1, 0]
