"""Common machinery of the deep uplift estimators.

An estimator is a keyword-only dataclass of hyperparameters (so
``get_params`` / ``set_params`` / :func:`sklearn.base.clone` work as for any
scikit-learn estimator) plus the state learned by :meth:`fit`, whose names
end in ``_``. Subclasses only say which network to build and which penalty
to add to the factual loss.

Conventions (causalml's argument order)::

    est.fit(X, treatment, y, sample_weight=None)   # treatment: 0 = control, 1..K
    est.predict(X)           # effects vs control: (n,) for K = 1, (n, K) for K > 1
    est.predict_outcomes(X)  # E[y | x, arm] for every arm: (n, K + 1)
    est.save(path); type(est).load(path)

Saved form: a folder with ``config.json`` (hyperparameters, the settings
that ``size_tiers`` chose for the training rows, preprocessing, outcome
scaling) and ``weights.pt`` (the state dict, read back with
``torch.load(weights_only=True)``, so loading never unpickles code).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from sklearn.base import BaseEstimator
from torch import nn

from ..losses import expected_outcome, factual_loss
from ..networks import NetworkOutput, outcome_width
from ..persistence import read_artifact, write_artifact
from ..preprocessing import OutcomeScaler, TabularPreprocessor, infer_outcome_type
from ..training import (
    ProgressCallback,
    TrainingConfig,
    resolve_device,
    resolve_seed,
    seeded,
    subset_to_device,
    torch_threads,
    train_members,
    train_network,
    validation_split,
)

__all__ = ["SIZE_TIER_KEYS", "DeepUpliftEstimator", "check_treatment"]

#: Hyperparameters a tier of ``size_tiers`` may set: the network's shape and
#: the training settings that :meth:`DeepUpliftEstimator.fit` reads.
SIZE_TIER_KEYS = frozenset({
    "representation_layers", "head_layers", "hidden_layers", "activation",
    "batch_share", "learning_rate_max_factor", "patience", "max_rows_processed",
    "n_ensemble", "ensemble_row_budget",
})

# Rows per forward pass when predicting: small enough that a layer's
# activations (4,096 x 128 floats, 2 MB) stay in the CPU cache; 65,536-row
# passes ran 40 % slower on the scoring benchmark's model.
_PREDICT_CHUNK = 4_096


def check_treatment(treatment: Any, n_rows: int) -> tuple[np.ndarray, int]:
    """Validate treatment codes (0 = control, 1..K) and return them with K + 1."""
    t = np.asarray(treatment)
    if t.ndim != 1 or t.shape[0] != n_rows:
        raise ValueError(f"treatment must have shape ({n_rows},), got {t.shape}")
    if not np.all(np.isfinite(t.astype(np.float64))) or np.any(t != np.round(t)):
        raise ValueError("treatment must be integer codes: 0 = control, 1..K = arms")
    t = t.astype(np.int64)
    arms = np.unique(t)
    n_arms = int(arms.max()) + 1
    if arms.min() < 0 or len(arms) != n_arms or n_arms < 2:
        raise ValueError(
            f"treatment must use every code 0..K with K >= 1 (0 = control); got {arms.tolist()}"
        )
    return t, n_arms


@dataclass(kw_only=True, eq=False, repr=False)
class DeepUpliftEstimator(BaseEstimator):
    """Base class. Hyperparameters shared by every deep uplift estimator.

    Parameters
    ----------
    outcome_type:
        ``"binary"`` (conversion), ``"continuous"``, ``"zero_inflated"``
        (revenue: ZILN loss) or ``"auto"`` (see
        :func:`models_dl.preprocessing.infer_outcome_type`).
    learning_rate, weight_decay:
        AdamW settings; ``learning_rate=None`` scales the step with the batch
        size (:func:`models_dl.training.resolve_learning_rate`).
    batch_size:
        Mini-batch size; ``None`` picks about ``batch_share`` of the rows,
        a power of two in [64, 2048].
    batch_share:
        See ``batch_size``.
    learning_rate_max_factor:
        With ``learning_rate=None``, how far the step may grow above its base
        for batches larger than 128 (linear scaling; 1: it only shrinks).
    max_epochs, patience:
        Epoch cap and early-stopping patience on the factual validation loss.
    max_steps_per_epoch:
        Cap on updates between two validation checks (large data sets).
    max_rows_processed:
        Compute budget per network: stop once this many training rows
        (summed over epochs) have been processed; ``None``: no budget.
    weight_average:
        Decay of the moving average of the weights that validation, early
        stopping and the fitted model use (``None``: the weights themselves);
        see :class:`~models_dl.training.TrainingConfig`. Estimators whose
        members train one after the other ignore it.
    validation_fraction:
        Share of rows held out for early stopping (stratified by arm and
        outcome class, at most 100 000 rows).
    n_ensemble:
        Number of networks trained from different seeds and validation splits;
        their expected outcomes are averaged (Lakshminarayanan et al. 2017,
        "deep ensembles"). Averaging removes seed-to-seed variance, which
        dominates on small data.
    ensemble_row_budget:
        Caps the members at ``ceil(ensemble_row_budget / n_rows)``
        so that the cost of ensembling stays bounded on large data, where a
        single network already has little variance. ``None``: no cap.
    size_tiers:
        Settings by the number of training rows: a sequence of dicts, each
        with ``max_rows`` (``None``: no limit) and values for any of
        :data:`SIZE_TIER_KEYS`; :meth:`fit` applies the first tier whose
        ``max_rows`` is at least the row count over the hyperparameters of
        the same name (a network that suits 500 rows is not the one that
        suits 100 000). The chosen settings are ``size_settings_`` and are
        saved with the model, so loading builds the same layers. ``None``:
        the hyperparameters as they are.
    categorical_features, max_categories, log_skew_threshold:
        Passed to :class:`~models_dl.preprocessing.TabularPreprocessor`.
    random_state:
        Seed for splits, initialisation, shuffling and dropout.
    device:
        ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.
    n_threads:
        Torch intra-op threads during fit and predict, restored afterwards;
        ``None`` means one (see :mod:`models_dl.training` for why).
    callback:
        Called with a :class:`~models_dl.training.TrainingProgress` after
        every epoch; not saved with the model.
    """

    estimator_name: ClassVar[str] = "base"
    #: Whether the members train together in one batched pass
    #: (:func:`models_dl.training.train_members`): true for every estimator
    #: whose loss is the factual loss plus a penalty that reads only the
    #: network's output; one that reads the network's own parameters or
    #: replaces :meth:`_loss` trains its members one after the other.
    train_members_together: ClassVar[bool] = True

    outcome_type: str = "auto"
    learning_rate: float | None = 1e-3
    weight_decay: float = 1e-4
    batch_size: int | None = None
    batch_share: float = 0.01
    learning_rate_max_factor: float = 1.0
    max_epochs: int = 300
    patience: int = 20
    max_steps_per_epoch: int = 500
    max_rows_processed: int | None = None
    validation_fraction: float = 0.2
    weight_average: float | None = None
    n_ensemble: int = 1
    ensemble_row_budget: int | None = None
    size_tiers: tuple[dict[str, Any], ...] | None = None
    categorical_features: list[Any] | None = None
    max_categories: int = 50
    log_skew_threshold: float | None = 2.0
    random_state: int | None = None
    device: str = "auto"
    n_threads: int | None = None
    callback: ProgressCallback | None = None

    # ------------------------------------------------------- size tiers
    def _setting(self, name: str) -> Any:
        """Hyperparameter ``name`` as the fitted size tier sets it, else as given."""
        return getattr(self, "size_settings_", {}).get(name, getattr(self, name))

    def _size_settings(self, n_rows: int) -> dict[str, Any]:
        """The settings of the first tier in ``size_tiers`` that covers ``n_rows``."""
        for number, tier in enumerate(self.size_tiers or ()):
            unknown = set(tier) - {"max_rows", *SIZE_TIER_KEYS}
            if unknown:
                raise ValueError(
                    f"size_tiers[{number}] sets {sorted(unknown)}; a tier may set max_rows"
                    f" and {sorted(SIZE_TIER_KEYS)}"
                )
            missing = (SIZE_TIER_KEYS & set(tier)) - set(self.get_params(deep=False))
            if missing:
                raise ValueError(
                    f"size_tiers[{number}] sets {sorted(missing)}, which"
                    f" {type(self).__name__} does not have"
                )
            limit = tier.get("max_rows")
            if limit is None or n_rows <= limit:
                return {
                    k: tuple(v) if isinstance(v, list) else v
                    for k, v in tier.items() if k != "max_rows"
                }
        return {}

    # ------------------------------------------------------------ hooks
    def _build_network(self, n_inputs: int, n_arms: int, out_width: int) -> nn.Module:
        raise NotImplementedError

    def _penalty(
        self, network: nn.Module, output: NetworkOutput, batch: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        """Extra training objective beyond the factual loss (IPM, propensity...)."""
        return output.outcomes.new_zeros(())

    def _before_training(self, features: np.ndarray, treatment: np.ndarray, seed: int) -> None:
        """Inspect the preprocessed training data before any network is built."""

    def _balance_arms(self) -> bool:
        """Whether rows are reweighted so every arm carries the same total weight."""
        return False

    def _has_penalty(self) -> bool:
        """Whether :meth:`_penalty` adds anything (skips a per-member loop when not)."""
        return type(self)._penalty is not DeepUpliftEstimator._penalty

    # ------------------------------------------------------------- fit
    def _member_loss(
        self, output: NetworkOutput, batch: dict[str, torch.Tensor], penalise: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`_loss` for stacked members: every tensor has a leading member axis.

        Returns ``(objective, criterion)`` per member, shape ``(n_members,)``.
        """
        outcomes = output.outcomes  # (members, rows, arms, width)
        index = batch["t"][:, :, None, None].expand(-1, -1, 1, outcomes.shape[-1])
        factual = outcomes.gather(2, index).squeeze(2)
        per_row = factual_loss(factual, batch["y"], self.outcome_type_)
        w = batch["w"]
        criterion = (per_row * w).sum(1) / w.sum(1).clamp_min(1e-12)
        if not penalise or not self._has_penalty():
            return criterion, criterion
        penalties = torch.stack([
            self._penalty(None, _member_output(output, m), {k: v[m] for k, v in batch.items()})
            for m in range(outcomes.shape[0])
        ])
        return criterion + penalties, criterion

    def _loss(
        self, network: nn.Module, batch: dict[str, torch.Tensor], penalise: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor]:
        output = network(batch["x"])
        rows = torch.arange(batch["t"].shape[0], device=batch["t"].device)
        per_row = factual_loss(output.outcomes[rows, batch["t"]], batch["y"], self.outcome_type_)
        w = batch["w"]
        criterion = (per_row * w).sum() / w.sum().clamp_min(1e-12)
        if not penalise:
            return criterion, criterion
        return criterion + self._penalty(network, output, batch), criterion

    def fit(
        self, X: Any, treatment: Any, y: Any, sample_weight: Any | None = None
    ) -> DeepUpliftEstimator:
        """Fit on features ``X``, treatment codes (0 = control, 1..K) and outcomes ``y``."""
        n_rows = len(X)
        t, n_arms = check_treatment(treatment, n_rows)
        y = np.asarray(y, dtype=np.float64).reshape(-1)
        if y.shape[0] != n_rows:
            raise ValueError(f"y has {y.shape[0]} rows, X has {n_rows}")
        if not np.all(np.isfinite(y)):
            raise ValueError("y contains NaN or infinite values")
        weights = np.ones(n_rows) if sample_weight is None else np.asarray(sample_weight, float)
        if weights.shape != (n_rows,) or np.any(weights < 0):
            raise ValueError("sample_weight must be a non-negative vector with one value per row")

        self.outcome_type_ = (
            infer_outcome_type(y) if self.outcome_type == "auto" else self.outcome_type
        )
        self.preprocessor_ = TabularPreprocessor(
            self.categorical_features, self.max_categories, self.log_skew_threshold
        ).fit(X)
        features = self.preprocessor_.transform(X)
        self.outcome_scaler_ = OutcomeScaler.fit(y, self.outcome_type_)
        target = self.outcome_scaler_.transform(y)
        if self._balance_arms():
            counts = np.bincount(t, minlength=n_arms).astype(np.float64)
            weights = weights * (n_rows / (n_arms * counts))[t]
        weights = weights / max(weights.mean(), 1e-12)

        self.n_arms_ = n_arms
        self.n_features_in_ = _n_columns(X)
        self.n_inputs_ = int(features.shape[1])
        self.device_ = resolve_device(self.device)
        seed = resolve_seed(self.random_state)
        self.size_settings_ = self._size_settings(n_rows)
        self.n_members_ = self._n_members(n_rows)
        member_seeds = np.random.SeedSequence(seed).generate_state(self.n_members_)
        self.fit_info_: dict[str, Any] = {}
        self._before_training(features, t, seed)
        strata = t * 2 + (y > 0) if self.outcome_type_ != "continuous" else t
        config = TrainingConfig(
            max_epochs=self.max_epochs,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            weight_decay=self.weight_decay,
            patience=self._setting("patience"),
            max_steps_per_epoch=self.max_steps_per_epoch,
            max_rows_processed=self._setting("max_rows_processed"),
            weight_average=self.weight_average,
            batch_share=self._setting("batch_share"),
            learning_rate_max_factor=self._setting("learning_rate_max_factor"),
        )

        data = {
            "x": torch.from_numpy(features),
            "t": torch.from_numpy(t),
            "y": torch.from_numpy(target),
            "w": torch.from_numpy(weights.astype(np.float32)),
        }
        with torch_threads(self.n_threads):
            if self.train_members_together:
                self._fit_members_together(data, member_seeds, strata, config)
            else:
                self._fit_members_in_turn(data, member_seeds, strata, config)
        return self

    def _fit_members_together(
        self, data: dict[str, torch.Tensor], member_seeds: np.ndarray, strata: np.ndarray,
        config: TrainingConfig,
    ) -> None:
        n_rows = data["x"].shape[0]
        networks, train_rows, val_rows = [], [], []
        for member_seed in member_seeds:
            rng = np.random.default_rng(int(member_seed))
            train_idx, val_idx = validation_split(n_rows, self.validation_fraction, rng, strata)
            train_rows.append(train_idx)
            val_rows.append(val_idx)
            with seeded(int(member_seed)):
                networks.append(self._build_network(
                    self.n_inputs_, self.n_arms_, outcome_width(self.outcome_type_)
                ).to(self.device_))
        on_device = {name: tensor.to(self.device_) for name, tensor in data.items()}
        with seeded(int(member_seeds[0])):
            self.history_ = train_members(
                networks, self._member_loss, on_device, train_rows, val_rows, config,
                callback=self.callback,
            )
        self.networks_ = nn.ModuleList(networks).eval()

    def _fit_members_in_turn(
        self, data: dict[str, torch.Tensor], member_seeds: np.ndarray, strata: np.ndarray,
        config: TrainingConfig,
    ) -> None:
        n_rows = data["x"].shape[0]
        n_arms = self.n_arms_
        networks = []
        self.history_ = []
        for member, member_seed in enumerate(member_seeds):
            rng = np.random.default_rng(int(member_seed))
            train_idx, val_idx = validation_split(
                n_rows, self.validation_fraction, rng, strata
            )
            with seeded(int(member_seed)):
                network = self._build_network(
                    self.n_inputs_, n_arms, outcome_width(self.outcome_type_)
                ).to(self.device_)
                history = train_network(
                    network,
                    self._loss,
                    subset_to_device(data, train_idx, self.device_),
                    subset_to_device(data, val_idx, self.device_) if val_idx.size else None,
                    config,
                    callback=self.callback,
                    member=member,
                    n_members=len(member_seeds),
                )
            networks.append(network)
            self.history_.append(history)
        self.networks_ = nn.ModuleList(networks).eval()

    def _n_members(self, n_rows: int) -> int:
        members = max(self._setting("n_ensemble"), 1)
        budget = self._setting("ensemble_row_budget")
        if budget is not None:
            members = min(members, max(1, math.ceil(budget / max(n_rows, 1))))
        return members

    # ---------------------------------------------------------- predict
    def _check_fitted(self) -> None:
        if not hasattr(self, "networks_"):
            raise RuntimeError(f"{type(self).__name__} is not fitted; call fit first")

    def predict_outcomes(self, X: Any) -> np.ndarray:
        """Expected outcome under every arm, shape ``(n, K + 1)``, column 0 = control.

        Probabilities for binary outcomes; original units otherwise. The
        ensemble members are averaged on this scale.
        """
        self._check_fitted()
        features = self.preprocessor_.transform(X)
        result = np.zeros((features.shape[0], self.n_arms_), dtype=np.float64)
        with torch_threads(self.n_threads), torch.no_grad():
            for start in range(0, features.shape[0], _PREDICT_CHUNK):
                chunk = torch.from_numpy(features[start : start + _PREDICT_CHUNK]).to(self.device_)
                total = None
                for network in self.networks_:
                    value = expected_outcome(network(chunk).outcomes, self.outcome_type_)
                    total = value if total is None else total + value
                result[start : start + chunk.shape[0]] = (
                    (total / len(self.networks_)).double().cpu().numpy()
                )
        return self.outcome_scaler_.inverse_transform(result)

    def predict(self, X: Any) -> np.ndarray:
        """Effect of each treated arm against control: ``(n,)`` for one arm, ``(n, K)`` for K."""
        outcomes = self.predict_outcomes(X)
        effects = outcomes[:, 1:] - outcomes[:, [0]]
        return effects[:, 0] if self.n_arms_ == 2 else effects

    # --------------------------------------------------------- persistence
    def _config_params(self) -> dict[str, Any]:
        params = self.get_params(deep=False)
        params["callback"] = None
        return {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()}

    def save(self, path: str | Path) -> Path:
        """Write ``config.json`` and ``weights.pt`` into the folder ``path``."""
        self._check_fitted()
        config = {
            "estimator": self.estimator_name,
            "class": type(self).__name__,
            "params": self._config_params(),
            "size_settings": {
                k: list(v) if isinstance(v, tuple) else v for k, v in self.size_settings_.items()
            },
            "outcome_type": self.outcome_type_,
            "outcome_scaler": asdict(self.outcome_scaler_),
            "preprocessor": self.preprocessor_.to_config(),
            "n_arms": self.n_arms_,
            "n_features_in": self.n_features_in_,
            "n_inputs": self.n_inputs_,
            "n_members": self.n_members_,
            "epochs_trained": [len(h["train_loss"]) for h in self.history_],
            "fit_info": self.fit_info_,
        }
        return write_artifact(path, config, self.networks_.state_dict())

    @classmethod
    def load(cls, path: str | Path, device: str = "auto") -> DeepUpliftEstimator:
        """Rebuild an estimator saved by :meth:`save` (any subclass when called on the base)."""
        config, state = read_artifact(path)
        klass = _subclass_named(config["class"])
        if cls is not DeepUpliftEstimator and not issubclass(klass, cls):
            raise TypeError(f"{path} holds a {klass.__name__}, not a {cls.__name__}")
        tuple_fields = {f.name for f in fields(klass) if isinstance(f.default, tuple)}
        params = {
            k: tuple(v) if k in tuple_fields and isinstance(v, list) else v
            for k, v in config["params"].items()
        }
        if params.get("size_tiers") is not None:
            params["size_tiers"] = tuple(
                {k: tuple(v) if isinstance(v, list) else v for k, v in tier.items()}
                for tier in params["size_tiers"]
            )
        params["device"] = device
        estimator = klass(**params)
        estimator.outcome_type_ = config["outcome_type"]
        estimator.outcome_scaler_ = OutcomeScaler(**config["outcome_scaler"])
        estimator.preprocessor_ = TabularPreprocessor.from_config(config["preprocessor"])
        estimator.n_arms_ = config["n_arms"]
        estimator.n_features_in_ = config["n_features_in"]
        estimator.n_inputs_ = config["n_inputs"]
        estimator.n_members_ = config["n_members"]
        # Artifacts written before size tiers existed have none: their
        # params are the settings they were trained with.
        estimator.size_settings_ = {
            k: tuple(v) if isinstance(v, list) else v
            for k, v in config.get("size_settings", {}).items()
        }
        estimator.device_ = resolve_device(device)
        estimator.history_ = []
        estimator.fit_info_ = config.get("fit_info", {})
        width = outcome_width(estimator.outcome_type_)
        networks = nn.ModuleList(
            estimator._build_network(estimator.n_inputs_, estimator.n_arms_, width)
            for _ in range(estimator.n_members_)
        )
        networks.load_state_dict(state)
        estimator.networks_ = networks.to(estimator.device_).eval()
        return estimator


def _member_output(output: NetworkOutput, member: int) -> NetworkOutput:
    """One member's part of a stacked output."""
    return NetworkOutput(*(None if v is None else v[member] for v in (
        output.outcomes, output.representation, output.propensity_logits, output.pseudo_effects
    )))


def _subclass_named(name: str) -> type[DeepUpliftEstimator]:
    """The estimator class called ``name``: every one is a subclass of the base.

    Found by walking the subclasses rather than through models_dl.registry,
    which imports the estimators and so may not be imported by them.
    """
    pending = [DeepUpliftEstimator]
    while pending:
        klass = pending.pop()
        if klass.__name__ == name:
            return klass
        pending.extend(klass.__subclasses__())
    raise ValueError(f"no estimator class named {name!r}")


def _n_columns(X: Any) -> int:
    shape = getattr(X, "shape", None)
    if shape is not None and len(shape) == 2:
        return int(shape[1])
    return int(np.asarray(X).reshape(len(X), -1).shape[1])
