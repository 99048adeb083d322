"""Small, fast problems shared by the models_dl tests (no data files needed)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

# keep every test on one or two threads: the CI machine is shared
torch.set_num_threads(1)

FAST = {"max_epochs": 8, "patience": 3, "n_threads": 1}


def linear_effect_problem(n: int = 600, n_arms: int = 2, seed: int = 0, binary: bool = False):
    """x ~ N(0, 1)^4; arm k shifts the outcome by tau_k(x) = (-1)^k * k * x0 / 2 + 0.5."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    t = rng.integers(0, n_arms, n)
    tau = np.stack([(-1) ** k * k * x[:, 0] / 2 + 0.5 for k in range(1, n_arms)], axis=1)
    mu = x[:, 1] + np.where(t > 0, tau[np.arange(n), np.maximum(t - 1, 0)], 0.0)
    if binary:
        y = (rng.random(n) < 1 / (1 + np.exp(-mu))).astype(float)
    else:
        y = mu + 0.3 * rng.normal(size=n)
    return x, t, y, tau


@pytest.fixture
def continuous_problem():
    return linear_effect_problem()


@pytest.fixture
def mixed_frame():
    """A DataFrame with a categorical column and missing values."""
    rng = np.random.default_rng(3)
    n = 300
    frame = pd.DataFrame(
        {
            "age": rng.integers(18, 80, n).astype(float),
            "region": rng.choice(["north", "south", "east"], n),
            "spend": rng.lognormal(3, 1.5, n),
            "engagement": rng.random(n),
        }
    )
    frame.loc[rng.random(n) < 0.1, "age"] = np.nan
    frame.loc[rng.random(n) < 0.05, "region"] = None
    frame["region"] = frame["region"].astype("category")
    t = rng.integers(0, 2, n)
    y = (rng.random(n) < 0.2 + 0.2 * t * (frame["region"] == "north")).astype(float)
    return frame, t, y
