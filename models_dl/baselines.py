"""causalml's learners as baselines, behind one call (no Django, no torch).

The training pipeline fits them beside the deep estimators on the same split
and the benchmark prints them side by side. Categoricals are encoded with
our own TabularPreprocessor (fitted on the training rows only), since
causalml's learners take numeric matrices.

For a randomised experiment the propensity of each arm is known (its share
of the rows in arm k or control); X-, R- and DR-learners are given it rather
than estimating it, as causalml recommends for RCTs.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from .preprocessing import TabularPreprocessor

CAUSALML_LEARNERS = ("S", "T", "X", "R", "DR", "CausalForest")
_NEEDS_PROPENSITY = {"X", "R", "DR"}


def known_propensity(treatment: np.ndarray, n_rows: int) -> dict[int, np.ndarray]:
    """Each arm's randomisation share against control, as causalml's ``p`` argument."""
    t = np.asarray(treatment)
    return {arm: np.full(n_rows, np.mean(t[(t == 0) | (t == arm)] == arm))
            for arm in range(1, int(t.max()) + 1)}


def causalml_learner(name: str, *, threads: int = 2, seed: int = 0) -> Any:
    """An unfitted causalml learner with LightGBM base models (``name`` in CAUSALML_LEARNERS)."""
    from causalml.inference.meta import (
        BaseDRRegressor,
        BaseRRegressor,
        BaseSRegressor,
        BaseTRegressor,
        BaseXRegressor,
    )
    from causalml.inference.tree import CausalRandomForestRegressor
    from lightgbm import LGBMRegressor

    def lgbm() -> LGBMRegressor:
        return LGBMRegressor(n_jobs=threads, random_state=seed, verbose=-1)

    builders = {
        "S": lambda: BaseSRegressor(learner=lgbm(), control_name=0),
        "T": lambda: BaseTRegressor(learner=lgbm(), control_name=0),
        "X": lambda: BaseXRegressor(learner=lgbm(), control_name=0),
        "R": lambda: BaseRRegressor(learner=lgbm(), control_name=0, random_state=seed),
        "DR": lambda: BaseDRRegressor(learner=lgbm(), control_name=0),
        "CausalForest": lambda: CausalRandomForestRegressor(
            n_estimators=100, control_name=0, n_jobs=threads, random_state=seed),
    }
    if name not in builders:
        raise ValueError(f"unknown causalml learner {name!r}; choose from {CAUSALML_LEARNERS}")
    return builders[name]()


def causalml_fit_predict(
    name: str, X_train: Any, t_train: np.ndarray, y_train: np.ndarray, X_test: Any, *,
    randomised: bool = True, threads: int = 2, seed: int = 0,
) -> np.ndarray:
    """Fit on the training rows, return the effect on the test rows, shape ``(n_test, K)``."""
    encoder = TabularPreprocessor().fit(X_train)
    x_train, x_test = encoder.transform(X_train), encoder.transform(X_test)
    t_train = np.asarray(t_train).astype(int)
    y_train = np.asarray(y_train, dtype=float)
    model = causalml_learner(name, threads=threads, seed=seed)
    fit_kwargs: dict[str, Any] = {"verbose": False} if name == "R" else {}
    predict_kwargs: dict[str, Any] = {}
    if name in _NEEDS_PROPENSITY and randomised:
        fit_kwargs["p"] = known_propensity(t_train, x_train.shape[0])
        predict_kwargs["p"] = {arm: np.full(x_test.shape[0], p[0])
                               for arm, p in fit_kwargs["p"].items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # causalml and lightgbm are chatty
        model.fit(x_train, t_train, y_train, **fit_kwargs)
        effect = model.predict(x_test, **predict_kwargs)
    effect = np.asarray(effect, dtype=float)
    return effect.reshape(x_test.shape[0], -1)
