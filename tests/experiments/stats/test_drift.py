"""PSI: the formula by hand, zero for the same data, large for a shift."""

import math

import numpy as np
import pandas as pd
import pytest

from experiments.stats.drift import psi, psi_by_feature, psi_reference


def test_psi_matches_the_formula_by_hand():
    expected, actual = [0.5, 0.3, 0.2], [0.4, 0.4, 0.2]
    by_hand = (0.4 - 0.5) * math.log(0.4 / 0.5) + (0.4 - 0.3) * math.log(0.4 / 0.3)
    assert psi(expected, actual) == pytest.approx(by_hand, abs=1e-15)


def test_the_same_distribution_is_stable_and_a_shift_is_not():
    rng = np.random.default_rng(0)
    train = pd.DataFrame({"spend": rng.exponential(50, 20_000),
                          "channel": rng.choice(["web", "phone", "store"], 20_000, p=[.6, .3, .1])})
    reference = psi_reference(train)
    same = pd.DataFrame({"spend": rng.exponential(50, 20_000),
                         "channel": rng.choice(["web", "phone", "store"], 20_000, p=[.6, .3, .1])})
    shifted = pd.DataFrame({"spend": rng.exponential(80, 20_000),
                            "channel": rng.choice(["web", "phone", "store"], 20_000,
                                                  p=[.2, .3, .5])})
    stable = psi_by_feature(reference, same)
    moved = psi_by_feature(reference, shifted)
    assert max(stable.values()) < 0.01
    assert moved["spend"] > 0.1 and moved["channel"] > 0.25


def test_missing_values_and_unseen_categories_get_their_own_bins():
    train = pd.DataFrame({"age": [20.0, 30.0, 40.0, np.nan], "tier": ["a", "b", "a", None]})
    reference = psi_reference(train, bins=2)
    assert reference["age"]["shares"][-1] == 0.25  # the missing bin
    now = pd.DataFrame({"age": [np.nan] * 4, "tier": ["z"] * 4})
    drift = psi_by_feature(reference, now)
    assert drift["age"] > 1 and drift["tier"] > 1
