"""Deep uplift and response models in PyTorch: no Django import anywhere here.

Public entry points::

    from models_dl import make_estimator, available_estimators, load_estimator
    est = make_estimator("default", random_state=0).fit(X, treatment, y)
    effect = est.predict(X)          # (n,) or (n, K)
    outcomes = est.predict_outcomes(X)  # (n, K + 1)

Modules: :mod:`.preprocessing` (features and outcome scaling),
:mod:`.networks` (PyTorch modules), :mod:`.losses`, :mod:`.training` (loop,
early stopping, threads, seeds), :mod:`.balance` (covariate balance test),
:mod:`.estimators` (TARNet, CFRNet, DESCN, DragonNet, EUEN-style, neural S / T),
:mod:`.registry` (names and the default), :mod:`.persistence` (state dict +
JSON), :mod:`.metrics` (Qini / uplift curves, AUUC, uplift@k, √PEHE),
:mod:`.calibration`, :mod:`.response` (propensity to buy), :mod:`.sequence`
(GRU over event histories), :mod:`.synthetic` (demo data with true effects),
:mod:`.baselines` (causalml learners), :mod:`.policy` (targeting, with the
knapsack in :mod:`.policy_knapsack`), :mod:`.policy_evaluation` (held-out
IPW / doubly robust value of a targeting policy), :mod:`.explain` (uplift
drivers and per-customer reasons) and :mod:`.rules` (targeting rules in words).
"""

from .registry import (
    DEFAULT_ESTIMATOR,
    available_estimators,
    estimator_class,
    load_estimator,
    make_estimator,
)
from .training import TrainingProgress

__all__ = [
    "DEFAULT_ESTIMATOR",
    "TrainingProgress",
    "available_estimators",
    "estimator_class",
    "load_estimator",
    "make_estimator",
]
