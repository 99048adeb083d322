"""Estimators by name: what the training pipeline and the benchmark call.

``"default"`` is the estimator the platform trains first: a CFRNet
(Shalit et al. 2017) with

* the Wasserstein penalty applied only when the arms are measurably
  imbalanced (``ipm_when="imbalanced"``): under randomisation, the
  platform's own data, the population distance between the arms is zero
  and the sample penalty only chases noise; on observational data (IHDP) it
  is on. Its weight of 0.3 shrinks as ``sqrt(1000 / rows)`` beyond 1 000
  rows (``alpha_full_rows``): the penalty buys variance, which shrinks like
  ``1 / sqrt(rows)``, at the price of bias, and at full weight on large
  confounded data the bias dominated;
* an ensemble of 10 networks, capped at ``ceil(120_000 / rows)`` members
  (``ensemble_row_budget``: 6 on 20 000 rows, 1 from 400 001 on; the
  mid-sized tier below allows ``ceil(300_000 / rows)``, 3 on 100 000) so that ensembling stops costing more once a single network has
  little variance; more members mostly help where a counterfactual is an
  extrapolation, which averages out over members. The members train
  together, one batched pass per step
  (:func:`models_dl.training.train_members`);
* a network chosen by the number of training rows (``size_tiers``; the
  choice is saved with the model, so loading builds the same layers):

  - up to 2 000 rows the earlier 3 x 128 shared / 2 x 64 head ELU network
    with a patience of 40 epochs, which costs little there (IHDP, 523
    training rows: mean √PEHE 0.695 against 1.43 with the small network);
    at 5 000 demo rows it cost 6 times the small network's CPU time for
    √PEHE 0.0468 against 0.0478;
  - up to 50 000 rows (``make run``'s demo trains on about 12 000) and
    beyond 400 000, 2 x 64 shared ReLU units and one 32-unit head layer: on
    the demo data at 20 000 rows as good as the earlier network (√PEHE
    0.037 against 0.0375) at about a sixth of the arithmetic per row, and
    at a million rows time is what binds;
  - from 50 001 to 400 000 rows, 3 x 64 / 2 x 32 ELU with members capped at
    ``ceil(300_000 / rows)`` (3 on 100 000 rows): the small network's
    √PEHE there was 0.034 against the earlier default's 0.0276, this one's
    0.026;
* batches of about 2 % of the rows (``batch_share``) with the learning
  rate scaled linearly with the batch, down for small batches (IHDP-sized
  data keep 5e-4) and up to 3 times the base for large ones
  (``learning_rate_max_factor``; :func:`models_dl.training.resolve_learning_rate`),
  so large data take fewer, bigger steps;
* a compute budget of 4M processed rows per network (binding only on large
  data: four passes over a million rows) and an early-stopping patience of
  10 epochs.

The held-out *observed* Qini does not rank learners on IHDP: its
differences are below the seed noise, and on confounded data it rewards
estimates that leak the propensity; the truth-based columns (√PEHE,
``qini_true``) rank them there.

It was chosen with ``benchmarks/uplift_quality.py``, which prints the figures
side by side with causalml's learners; the measurements behind each setting
are in ``benchmarks/RESULTS.md`` (registry default, training speed). :func:`make_estimator`
applies these settings first and the caller's keyword arguments over them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .estimators import (
    DESCN,
    CFRNet,
    DeepUpliftEstimator,
    DragonNet,
    ExplicitUpliftEstimator,
    NeuralSLearner,
    NeuralTLearner,
    TARNet,
)

__all__ = [
    "DEFAULT_ESTIMATOR",
    "available_estimators",
    "estimator_class",
    "load_estimator",
    "make_estimator",
]

_ESTIMATORS: dict[str, type[DeepUpliftEstimator]] = {
    cls.estimator_name: cls
    for cls in (
        TARNet, CFRNet, DESCN, DragonNet, ExplicitUpliftEstimator, NeuralSLearner, NeuralTLearner
    )
}

#: (registered name, preset hyperparameters) of the estimator behind ``"default"``.
DEFAULT_ESTIMATOR: tuple[str, dict[str, Any]] = (
    "cfrnet",
    {
        "representation_layers": (64, 64),
        "head_layers": (32,),
        "activation": "relu",
        "alpha": 0.3,
        "alpha_full_rows": 1_000,
        "ipm_when": "imbalanced",
        "learning_rate": None,
        "batch_share": 0.02,
        "learning_rate_max_factor": 3.0,
        "n_ensemble": 10,
        "ensemble_row_budget": 120_000,
        "max_rows_processed": 4_000_000,
        "patience": 10,
        "size_tiers": (
            {"max_rows": 2_000, "representation_layers": (128, 128, 128), "head_layers": (64, 64),
             "activation": "elu", "patience": 40},
            {"max_rows": 50_000},
            {"max_rows": 400_000, "representation_layers": (64, 64, 64), "head_layers": (32, 32),
             "activation": "elu", "ensemble_row_budget": 300_000},
        ),
    },
)


def available_estimators() -> list[str]:
    """Names accepted by :func:`make_estimator`, ``"default"`` first."""
    return ["default", *sorted(_ESTIMATORS)]


def estimator_class(name: str) -> type[DeepUpliftEstimator]:
    """The class registered under ``name`` (``"default"`` resolves to its family)."""
    if name == "default":
        name = DEFAULT_ESTIMATOR[0]
    try:
        return _ESTIMATORS[name]
    except KeyError:
        raise ValueError(
            f"unknown estimator {name!r}; available: {available_estimators()}"
        ) from None


def make_estimator(name: str = "default", **params: Any) -> DeepUpliftEstimator:
    """Build an unfitted estimator; ``params`` override the preset hyperparameters."""
    if name == "default":
        family, preset = DEFAULT_ESTIMATOR
        # A setting the caller gives wins over the size tiers' too.
        tiers = tuple(
            {k: v for k, v in tier.items() if k not in params} for tier in preset["size_tiers"]
        )
        return estimator_class(family)(**{**preset, "size_tiers": tiers, **params})
    return estimator_class(name)(**params)


def load_estimator(path: str | Path, device: str = "auto") -> DeepUpliftEstimator:
    """Load any estimator written by ``estimator.save(path)``."""
    return DeepUpliftEstimator.load(path, device=device)
