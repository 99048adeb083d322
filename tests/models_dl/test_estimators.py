"""Behaviour shared by every deep uplift estimator, on small fast problems."""

import json

import numpy as np
import pytest
import torch
from sklearn.base import clone

from models_dl import available_estimators, load_estimator, make_estimator
from models_dl.estimators import DESCN, CFRNet, TARNet

from .conftest import FAST, linear_effect_problem

NAMES = [name for name in available_estimators() if name != "default"]


@pytest.mark.parametrize("name", NAMES)
def test_one_arm_shapes(name):
    x, t, y, _ = linear_effect_problem(n=200, n_arms=2)
    est = make_estimator(name, random_state=0, **FAST).fit(x, t, y)
    assert est.predict(x[:7]).shape == (7,)
    assert est.predict_outcomes(x[:7]).shape == (7, 2)


@pytest.mark.parametrize("name", NAMES)
def test_k_arm_shapes_and_effect_is_outcome_difference(name):
    x, t, y, _ = linear_effect_problem(n=240, n_arms=3)
    est = make_estimator(name, random_state=0, **FAST).fit(x, t, y)
    effect, outcomes = est.predict(x[:5]), est.predict_outcomes(x[:5])
    assert effect.shape == (5, 2) and outcomes.shape == (5, 3)
    np.testing.assert_allclose(effect, outcomes[:, 1:] - outcomes[:, [0]])


def test_default_is_registered_and_builds():
    assert available_estimators()[0] == "default"
    assert make_estimator("default").get_params()["random_state"] is None
    with pytest.raises(ValueError, match="unknown estimator"):
        make_estimator("no_such_model")


def test_binary_outcomes_give_probabilities():
    x, t, y, _ = linear_effect_problem(n=300, binary=True)
    est = TARNet(random_state=0, **FAST).fit(x, t, y)
    assert est.outcome_type_ == "binary"
    outcomes = est.predict_outcomes(x)
    assert ((outcomes > 0) & (outcomes < 1)).all()
    assert np.all(np.abs(est.predict(x)) < 1)


def test_zero_inflated_outcomes_are_non_negative_and_use_ziln():
    rng = np.random.default_rng(1)
    x, t, _, _ = linear_effect_problem(n=400)
    buys = rng.random(400) < 0.2 + 0.2 * t
    y = np.where(buys, rng.lognormal(3.0, 0.5, 400), 0.0)
    est = TARNet(random_state=0, **FAST).fit(x, t, y)
    assert est.outcome_type_ == "zero_inflated"
    outcomes = est.predict_outcomes(x)
    assert (outcomes >= 0).all()
    # the model knows the treated buy more often: average uplift positive
    assert est.predict(x).mean() > 0


def test_save_and_load_give_identical_predictions(tmp_path, mixed_frame):
    frame, t, y = mixed_frame
    est = CFRNet(random_state=0, n_ensemble=2, **FAST).fit(frame, t, y)
    est.save(tmp_path / "model")
    assert {p.name for p in (tmp_path / "model").iterdir()} == {"config.json", "weights.pt"}
    again = load_estimator(tmp_path / "model")
    assert isinstance(again, CFRNet)
    assert again.get_params() == est.get_params() | {"device": "auto"}
    np.testing.assert_array_equal(again.predict(frame), est.predict(frame))
    np.testing.assert_array_equal(CFRNet.load(tmp_path / "model").predict(frame), est.predict(frame))
    with pytest.raises(TypeError):
        TARNet.load(tmp_path / "model")


def test_random_state_makes_fits_repeatable(continuous_problem):
    x, t, y, _ = continuous_problem
    first = make_estimator("dragonnet", random_state=7, **FAST).fit(x, t, y).predict(x)
    second = make_estimator("dragonnet", random_state=7, **FAST).fit(x, t, y).predict(x)
    other = make_estimator("dragonnet", random_state=8, **FAST).fit(x, t, y).predict(x)
    np.testing.assert_array_equal(first, second)
    assert not np.allclose(first, other)


def test_get_set_params_and_clone():
    est = CFRNet(alpha=0.5, ipm="mmd")
    params = est.get_params()
    assert params["alpha"] == 0.5 and params["ipm"] == "mmd"
    assert est.set_params(alpha=2.0, max_epochs=3) is est
    assert est.alpha == 2.0 and est.max_epochs == 3
    copy = clone(est)
    assert copy is not est and copy.get_params() == est.get_params()
    with pytest.raises(ValueError):
        est.set_params(not_a_param=1)


def test_progress_callback_is_called_every_epoch(continuous_problem):
    x, t, y, _ = continuous_problem
    seen = []
    # members trained together report once per epoch for all of them
    TARNet(random_state=0, max_epochs=4, patience=10, n_ensemble=2, n_threads=1,
           callback=seen.append).fit(x, t, y)
    assert [p.epoch for p in seen] == [1, 2, 3, 4]
    fractions = [p.fraction for p in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert all(np.isfinite(p.val_loss) for p in seen)


def test_progress_of_members_trained_in_turn(continuous_problem):
    x, t, y, _ = continuous_problem
    seen = []
    DESCN(random_state=0, max_epochs=4, patience=10, n_ensemble=2, n_threads=1,
          callback=seen.append).fit(x, t, y)
    assert [p.epoch for p in seen] == [1, 2, 3, 4, 1, 2, 3, 4]
    assert [p.member for p in seen] == [0] * 4 + [1] * 4
    fractions = [p.fraction for p in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


def test_sample_weight_and_treatment_validation(continuous_problem):
    x, t, y, _ = continuous_problem
    TARNet(random_state=0, **FAST).fit(x, t, y, sample_weight=np.ones(len(y)))
    with pytest.raises(ValueError, match="treatment"):
        TARNet(**FAST).fit(x, np.where(t == 1, 2, t), y)  # code 1 missing
    with pytest.raises(ValueError, match="sample_weight"):
        TARNet(**FAST).fit(x, t, y, sample_weight=-np.ones(len(y)))
    with pytest.raises(RuntimeError, match="not fitted"):
        TARNet().predict(x)


def test_it_restores_the_torch_thread_count(continuous_problem):
    import torch

    x, t, y, _ = continuous_problem
    before = torch.get_num_threads()
    TARNet(random_state=0, max_epochs=1, n_threads=2).fit(x, t, y)
    assert torch.get_num_threads() == before


@pytest.mark.parametrize("name", ["tarnet", "cfrnet", "dragonnet", "descn"])
def test_it_beats_a_constant_effect_on_a_heterogeneous_problem(name):
    """tau(x) = 0.5 - x0 / 2 has standard deviation 0.5: predicting the mean
    effect scores √PEHE ~0.5; the estimators must recover most of the slope."""
    x, t, y, tau = linear_effect_problem(n=1500, seed=2)
    x_test, _, _, tau_test = linear_effect_problem(n=500, seed=3)
    est = make_estimator(name, random_state=0, max_epochs=60, patience=10, n_threads=1)
    pehe = np.sqrt(np.mean((est.fit(x, t, y).predict(x_test) - tau_test[:, 0]) ** 2))
    constant = np.sqrt(np.mean((tau[:, 0].mean() - tau_test[:, 0]) ** 2))
    assert constant > 0.45
    assert pehe < 0.2


def test_compute_budget_and_ensemble_cap():
    x, t, y, _ = linear_effect_problem(n=500)
    seen = []
    est = TARNet(random_state=0, max_epochs=50, patience=50, batch_size=100, n_threads=1,
                 max_rows_processed=1000, n_ensemble=4, ensemble_row_budget=1000,
                 callback=seen.append).fit(x, t, y)
    # 400 training rows -> 1000 rows is 2.5 epochs; 1000 / 500 rows -> 2 members
    assert est.n_members_ == 2 and len(est.networks_) == 2
    assert [p.epoch for p in seen if p.member == 0] == [1, 2, 3]


def test_the_default_preset_round_trips(tmp_path):
    x, t, y, _ = linear_effect_problem(n=300, n_arms=3)
    est = make_estimator("default", random_state=0, max_epochs=2, n_threads=1).fit(x, t, y)
    assert est.n_members_ == 10 and est.fit_info_["ipm_active"] is False  # randomised arms
    assert est.learning_rate is None  # scaled with the batch size
    again = load_estimator(est.save(tmp_path / "default"))
    assert again.representation_layers == est.representation_layers
    assert again.fit_info_ == est.fit_info_
    np.testing.assert_array_equal(again.predict(x), est.predict(x))


def test_descn_round_trips_and_repeats_with_its_random_state(tmp_path, mixed_frame):
    frame, t, y = mixed_frame
    est = DESCN(random_state=3, n_ensemble=2, **FAST).fit(frame, t, y)
    again = load_estimator(est.save(tmp_path / "descn"))
    assert isinstance(again, DESCN) and again.get_params() == est.get_params() | {"device": "auto"}
    np.testing.assert_array_equal(again.predict(frame), est.predict(frame))
    repeat = DESCN(random_state=3, n_ensemble=2, **FAST).fit(frame, t, y)
    np.testing.assert_array_equal(repeat.predict(frame), est.predict(frame))
    other = DESCN(random_state=4, n_ensemble=2, **FAST).fit(frame, t, y)
    assert not np.allclose(other.predict(frame), est.predict(frame))


def _layer_widths(network):
    return [m.out_features for m in network.modules() if isinstance(m, torch.nn.Linear)]


def test_the_default_preset_picks_its_network_by_the_training_rows():
    preset = make_estimator("default")
    small, mid, large, huge = (
        preset._size_settings(rows) for rows in (500, 20_000, 100_000, 1_000_000)
    )
    assert small["representation_layers"] == (128, 128, 128) and small["activation"] == "elu"
    assert mid == {} and huge == {}  # the preset's own 2 x 64 ReLU network
    assert preset._size_settings(2_000) == small and preset._size_settings(2_001) == {}
    assert preset.representation_layers == (64, 64) and preset.activation == "relu"
    assert large["representation_layers"] == (64, 64, 64) and large["activation"] == "elu"
    # what the caller sets wins over every tier
    assert make_estimator("default", head_layers=(8,))._size_settings(500).get("head_layers") is None


def test_the_layers_a_size_tier_chose_round_trip_through_the_artifact(tmp_path):
    x, t, y, _ = linear_effect_problem(n=300)
    tiers = ({"max_rows": 100, "representation_layers": (4,)},
             {"max_rows": None, "representation_layers": (12, 6), "head_layers": (5,)})
    est = CFRNet(random_state=0, size_tiers=tiers, representation_layers=(16,),
                 head_layers=(16,), **FAST).fit(x, t, y)
    assert est.size_settings_ == {"representation_layers": (12, 6), "head_layers": (5,)}
    assert est.representation_layers == (16,)  # the hyperparameter itself is untouched
    assert _layer_widths(est.networks_[0])[:2] == [12, 6]
    again = load_estimator(est.save(tmp_path / "tiered"))
    assert again.get_params() == est.get_params() | {"device": "auto"}
    assert again.size_settings_ == est.size_settings_
    assert _layer_widths(again.networks_[0]) == _layer_widths(est.networks_[0])
    np.testing.assert_array_equal(again.predict(x), est.predict(x))


def test_artifacts_saved_before_size_tiers_still_load(tmp_path):
    x, t, y, _ = linear_effect_problem(n=300)
    est = CFRNet(random_state=0, representation_layers=(10,), head_layers=(7,), **FAST)
    folder = est.fit(x, t, y).save(tmp_path / "old")
    config = json.loads((folder / "config.json").read_text())
    del config["size_settings"], config["params"]["size_tiers"]
    (folder / "config.json").write_text(json.dumps(config))
    again = load_estimator(folder)
    assert again.size_settings_ == {} and _layer_widths(again.networks_[0])[0] == 10
    np.testing.assert_array_equal(again.predict(x), est.predict(x))


def test_a_size_tier_naming_an_unknown_setting_is_refused():
    x, t, y, _ = linear_effect_problem(n=200)
    with pytest.raises(ValueError, match=r"size_tiers\[0\] sets \['dropout'\]"):
        CFRNet(size_tiers=({"max_rows": None, "dropout": 0.5},), **FAST).fit(x, t, y)
    with pytest.raises(ValueError, match=r"size_tiers\[0\] sets \['hidden_layers'\]"):
        CFRNet(size_tiers=({"max_rows": None, "hidden_layers": (3,)},), **FAST).fit(x, t, y)
