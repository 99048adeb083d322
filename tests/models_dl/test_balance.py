import numpy as np

from models_dl.balance import mean_balance_p_values
from models_dl.estimators import CFRNet

from .conftest import FAST


def test_randomised_assignment_is_not_rejected_and_confounded_is():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, 5))
    randomised = rng.integers(0, 3, 2000)
    confounded = (rng.random(2000) < 1 / (1 + np.exp(-x[:, 0]))).astype(int)
    p_random = mean_balance_p_values(x, randomised, np.random.default_rng(1))
    p_confounded = mean_balance_p_values(x, confounded, np.random.default_rng(1))
    assert set(p_random) == {1, 2} and min(p_random.values()) > 0.01
    assert p_confounded[1] == 1 / 500  # no permutation comes close


def test_cfrnet_switches_the_penalty_off_for_balanced_arms():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 3))
    y = x[:, 0] + rng.normal(size=600)
    randomised = rng.integers(0, 2, 600)
    confounded = (x[:, 0] > 0).astype(int)
    est = CFRNet(ipm_when="imbalanced", random_state=0, **FAST)
    assert est.fit(x, randomised, y).fit_info_["ipm_active"] is False
    assert est.fit(x, confounded, y).fit_info_["ipm_active"] is True
    assert CFRNet(random_state=0, **FAST).fit(x, randomised, y).fit_info_["ipm_active"] is True


def test_cfrnet_penalty_weight_shrinks_with_the_square_root_of_the_rows():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 3))
    y = x[:, 0] + rng.normal(size=600)
    t = (x[:, 0] > 0).astype(int)
    shrunk = CFRNet(alpha=0.6, alpha_full_rows=150, random_state=0, **FAST).fit(x, t, y)
    assert shrunk.fit_info_["alpha"] == 0.6 * np.sqrt(150 / 600)  # 0.3
    # below alpha_full_rows the weight is alpha itself
    small = CFRNet(alpha=0.6, alpha_full_rows=1_000, random_state=0, **FAST).fit(x, t, y)
    assert small.fit_info_["alpha"] == 0.6
    # the shrunk weight is the one trained with: same fit as a fixed alpha of 0.3
    fixed = CFRNet(alpha=0.3, random_state=0, **FAST).fit(x, t, y)
    np.testing.assert_allclose(shrunk.predict(x), fixed.predict(x), rtol=1e-6)
    assert not np.allclose(small.predict(x), fixed.predict(x))
