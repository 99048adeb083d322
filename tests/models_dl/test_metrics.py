"""Our metrics against scikit-uplift's and causalml's published implementations.

Equality is asserted to 1e-9 on the same inputs. sklift evaluates curves at
the end of each block of tied scores, as we do, so its tests include ties.
causalml sorts with a non-stable sort, so the order of tied rows there is
arbitrary: its tests use distinct scores, where both agree exactly.
"""

import causalml.metrics as causalml_metrics
import numpy as np
import pandas as pd
import pytest
import sklift.metrics as sklift_metrics

from models_dl import metrics


def _sample(n=400, seed=0, ties=False, continuous=False):
    rng = np.random.default_rng(seed)
    t = rng.integers(0, 2, n)
    score = rng.normal(size=n)
    if ties:
        score = np.round(score, 1)
    if continuous:
        y = rng.gamma(2.0, 10.0, n) * (rng.random(n) < 0.3 + 0.1 * t)
    else:
        y = (rng.random(n) < 0.2 + 0.15 * t * (score > 0)).astype(int)
    return y, score, t


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("name", ["qini_curve", "uplift_curve"])
def test_curves_equal_sklift(name, ties):
    y, score, t = _sample(ties=ties)
    ours = getattr(metrics, name)(y, score, t)
    theirs = getattr(sklift_metrics, name)(y, score, t)
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-9)


@pytest.mark.parametrize("ties", [False, True])
def test_normalised_scores_equal_sklift(ties):
    y, score, t = _sample(seed=1, ties=ties)
    for negative_effect in (True, False):
        assert metrics.qini_auc_score(y, score, t, negative_effect) == pytest.approx(
            sklift_metrics.qini_auc_score(y, score, t, negative_effect=negative_effect), abs=1e-9
        )
    assert metrics.uplift_auc_score(y, score, t) == pytest.approx(
        sklift_metrics.uplift_auc_score(y, score, t), abs=1e-9
    )
    for name in ("perfect_qini_curve", "perfect_uplift_curve"):
        for a, b in zip(getattr(metrics, name)(y, t), getattr(sklift_metrics, name)(y, t), strict=True):
            np.testing.assert_allclose(a, b, atol=1e-9)


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("strategy", ["overall", "by_group"])
@pytest.mark.parametrize("k", [0.3, 57])
def test_uplift_at_k_equals_sklift(strategy, k, ties):
    y, score, t = _sample(seed=2, ties=ties)
    assert metrics.uplift_at_k(y, score, t, k=k, strategy=strategy) == pytest.approx(
        sklift_metrics.uplift_at_k(y, score, t, strategy=strategy, k=k), abs=1e-9
    )


@pytest.mark.parametrize("continuous", [False, True])
@pytest.mark.parametrize("normalize", [False, True])
def test_causalml_family_equals_causalml(normalize, continuous):
    y, score, t = _sample(seed=3, continuous=continuous)
    frame = pd.DataFrame({"y": y, "w": t, "model": score})
    np.testing.assert_allclose(
        metrics.cumulative_gain(y, score, t, normalize=normalize),
        causalml_metrics.get_cumgain(frame, normalize=normalize)["model"].to_numpy(),
        atol=1e-9,
    )
    np.testing.assert_allclose(
        metrics.cumulative_qini(y, score, t, normalize=normalize),
        causalml_metrics.get_qini(frame, normalize=normalize)["model"].to_numpy(),
        atol=1e-9,
    )
    assert metrics.auuc_score(y, score, t, normalize=normalize) == pytest.approx(
        causalml_metrics.auuc_score(frame, normalize=normalize)["model"], abs=1e-9
    )
    assert metrics.qini_score(y, score, t, normalize=normalize) == pytest.approx(
        causalml_metrics.qini_score(frame, normalize=normalize)["model"], abs=1e-9
    )


def test_causalml_family_with_true_effects_equals_causalml():
    y, score, t = _sample(seed=4)
    tau = np.random.default_rng(5).normal(size=y.size)
    frame = pd.DataFrame({"y": y, "w": t, "tau": tau, "model": score})
    np.testing.assert_allclose(
        metrics.cumulative_gain(y, score, t, tau=tau),
        causalml_metrics.get_cumgain(frame)["model"].to_numpy(),
        atol=1e-9,
    )
    np.testing.assert_allclose(
        metrics.cumulative_qini(y, score, t, tau=tau),
        causalml_metrics.get_qini(frame)["model"].to_numpy(),
        atol=1e-9,
    )


def test_qini_curve_by_hand():
    # sorted by score: (t=1, y=1), (t=0, y=0), (t=1, y=0), (t=0, y=1)
    y = [1, 0, 0, 1]
    t = [1, 0, 1, 0]
    score = [0.9, 0.8, 0.7, 0.6]
    x, q = metrics.qini_curve(y, score, t)
    # Q(k) = Y_t - Y_c * N_t / N_c: 1 - 0 (N_c = 0 -> 0), 1 - 0, 1 - 0 * 2, 1 - 1 * 2 / 2
    np.testing.assert_array_equal(x, [0, 1, 2, 3, 4])
    np.testing.assert_array_equal(q, [0, 1, 1, 1, 0])


def test_per_arm_scores_use_each_arm_against_control():
    rng = np.random.default_rng(6)
    t = rng.integers(0, 3, 600)
    y = (rng.random(600) < 0.2).astype(int)
    uplift = rng.normal(size=(600, 2))
    scores = metrics.per_arm_scores(metrics.qini_auc_score, y, uplift, t)
    rows = t != 2
    assert scores[1] == pytest.approx(
        metrics.qini_auc_score(y[rows], uplift[rows, 0], t[rows] == 1)
    )
    assert set(scores) == {1, 2}
    curves = metrics.per_arm_curves(metrics.qini_curve, y, uplift, t)
    x, q = metrics.qini_curve(y[rows], uplift[rows, 0], t[rows] == 1)
    np.testing.assert_array_equal(curves[1][0], x)
    np.testing.assert_array_equal(curves[1][1], q)


def test_sqrt_pehe():
    assert metrics.sqrt_pehe([1.0, 2.0], [1.0, 4.0]) == pytest.approx(np.sqrt(2.0))
    assert metrics.sqrt_pehe(np.zeros((3, 2)), np.ones((3, 2))) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        metrics.sqrt_pehe([1.0], [1.0, 2.0])


def test_uplift_auc_requires_binary_outcomes():
    y, score, t = _sample(continuous=True)
    with pytest.raises(ValueError, match="binary"):
        metrics.uplift_auc_score(y, score, t)
    assert np.isfinite(metrics.qini_auc_score(y, score, t))  # defined for continuous outcomes


def test_true_gain_auc_score_is_one_for_the_oracle_and_near_zero_for_noise():
    rng = np.random.default_rng(7)
    tau = rng.normal(size=2000)
    assert metrics.true_gain_auc_score(tau, tau) == pytest.approx(1.0)
    assert metrics.true_gain_auc_score(tau, -tau) == pytest.approx(-1.0)
    assert abs(metrics.true_gain_auc_score(tau, rng.normal(size=2000))) < 0.1
    # by hand: tau sorted by the score is (1, -1, 2); G = 0, 1, 0, 2
    # A_model = 0.5 + 0.5 + 1 = 2, A_random = 2 * 3 / 2 = 3, oracle (2, 1, -1): G = 0, 2, 3, 2 -> 6
    assert metrics.true_gain_auc_score([1.0, -1.0, 2.0], [3.0, 2.0, 1.0]) == pytest.approx(
        (2 - 3) / (6 - 3)
    )
