"""Deep uplift and response models in PyTorch: no Django import anywhere here.

Public entry points::

    from models_dl import make_estimator, available_estimators, load_estimator
    est = make_estimator("default", random_state=0).fit(X, treatment, y)
    effect = est.predict(X)          # (n,) or (n, K)
    outcomes = est.predict_outcomes(X)  # (n, K + 1)

Modules: :mod:`.preprocessing`, :mod:`.networks`, :mod:`.losses`,
:mod:`.training`, :mod:`.estimators`, :mod:`.registry`, :mod:`.metrics`,
:mod:`.calibration`, :mod:`.response`, :mod:`.sequence`, :mod:`.synthetic`.
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
