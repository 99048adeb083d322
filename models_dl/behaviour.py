"""Behaviour prediction beside the neural models: gradient boosting and the hurdle value model.

- :class:`BoostedBinaryClassifier`: a LightGBM classifier on the same
  tabular features as :class:`~models_dl.response.PropensityToBuyClassifier`
  (one-hot by the same :class:`~models_dl.preprocessing.TabularPreprocessor`),
  the baseline any neural candidate has to beat.
- :class:`HurdleRevenueRegressor`: expected revenue over a horizon, a
  zero-inflated target (most customers spend nothing). Two parts (Cragg
  1971's hurdle model): ``P(spend > 0)`` from a boosted classifier and
  ``E[revenue | spend > 0]`` from a boosted regressor with a gamma deviance
  (positive, right-skewed amounts) fitted on spenders only; the prediction
  is their product, ``E[revenue] = P(buy) * E[revenue | buy]``.

Artifacts: ``config.json`` plus LightGBM's own text model files (never a
pickle), so loading a model cannot run code, as with ``weights_only``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np

from .preprocessing import TabularPreprocessor

__all__ = ["BoostedBinaryClassifier", "HurdleRevenueRegressor"]

FORMAT_VERSION = 1
CONFIG_FILE = "config.json"


def _booster_params(objective: str, params: dict[str, Any], seed: int) -> dict[str, Any]:
    return {"objective": objective, "learning_rate": params.get("learning_rate", 0.05),
            "num_leaves": params.get("num_leaves", 15),
            "min_data_in_leaf": params.get("min_data_in_leaf", 20),
            "feature_fraction": 0.9, "bagging_fraction": 0.9, "bagging_freq": 1,
            "seed": seed, "num_threads": params.get("n_threads", 1), "verbosity": -1}


class _BoostedParams:
    """The LightGBM hyperparameters both behaviour models take (scikit-learn style)."""

    def __init__(self, *, n_estimators: int = 200, learning_rate: float = 0.05,
                 num_leaves: int = 15, min_data_in_leaf: int = 20,
                 random_state: int | None = 0, n_threads: int = 1) -> None:
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_data_in_leaf = min_data_in_leaf
        self.random_state = random_state
        self.n_threads = n_threads

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {"n_estimators": self.n_estimators, "learning_rate": self.learning_rate,
                "num_leaves": self.num_leaves, "min_data_in_leaf": self.min_data_in_leaf,
                "random_state": self.random_state, "n_threads": self.n_threads}


class BoostedBinaryClassifier(_BoostedParams):
    """LightGBM binary classifier on a DataFrame of features (scikit-learn style)."""

    model_name = "lightgbm_classifier"

    def fit(self, X: Any, y: Any) -> BoostedBinaryClassifier:
        y = np.asarray(y, dtype=np.float64).reshape(-1)
        if not np.isin(y, (0.0, 1.0)).all():
            raise ValueError("y must contain only 0 and 1")
        self.preprocessor_ = TabularPreprocessor(log_skew_threshold=None).fit(X)
        data = lgb.Dataset(self.preprocessor_.transform(X), label=y)
        self.booster_ = lgb.train(
            _booster_params("binary", self.get_params(), self.random_state or 0), data,
            num_boost_round=self.n_estimators)
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        p = np.clip(self.booster_.predict(self.preprocessor_.transform(X)), 1e-6, 1 - 1e-6)
        return np.column_stack([1 - p, p])

    def save(self, path: str | Path) -> Path:
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        self.booster_.save_model(str(folder / "booster.txt"))
        config = {"format_version": FORMAT_VERSION, "model": self.model_name,
                  "params": self.get_params(), "preprocessor": self.preprocessor_.to_config()}
        (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2, sort_keys=True))
        return folder

    @classmethod
    def load(cls, path: str | Path) -> BoostedBinaryClassifier:
        folder = Path(path)
        config = _config(folder, cls.model_name)
        model = cls(**config["params"])
        model.preprocessor_ = TabularPreprocessor.from_config(config["preprocessor"])
        model.booster_ = lgb.Booster(model_file=str(folder / "booster.txt"))
        model.classes_ = np.array([0, 1])
        return model


class HurdleRevenueRegressor(_BoostedParams):
    """Expected revenue = P(buy) x E[revenue | buy], two LightGBM models.

    ``fit(X, revenue)`` takes each customer's revenue over the horizon (0 for
    most); ``predict(X)`` the expected revenue, ``predict_parts(X)`` the two
    factors.
    """

    model_name = "hurdle_revenue"

    def fit(self, X: Any, revenue: Any) -> HurdleRevenueRegressor:
        revenue = np.asarray(revenue, dtype=np.float64).reshape(-1)
        if np.any(revenue < 0) or not np.all(np.isfinite(revenue)):
            raise ValueError("revenue must be finite and non-negative")
        spenders = revenue > 0
        if spenders.sum() < 10:
            raise ValueError("fewer than 10 customers with revenue to learn the amount from")
        self.buy_ = BoostedBinaryClassifier(**self.get_params()).fit(X, spenders.astype(float))
        features = self.buy_.preprocessor_.transform(X)
        data = lgb.Dataset(features[spenders], label=revenue[spenders])
        self.amount_ = lgb.train(
            _booster_params("gamma", self.get_params(), self.random_state or 0), data,
            num_boost_round=self.n_estimators)
        return self

    def predict_parts(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        p_buy = self.buy_.predict_proba(X)[:, 1]
        amount = self.amount_.predict(self.buy_.preprocessor_.transform(X))
        return p_buy, amount

    def predict(self, X: Any) -> np.ndarray:
        p_buy, amount = self.predict_parts(X)
        return p_buy * amount

    def save(self, path: str | Path) -> Path:
        folder = Path(path)
        self.buy_.save(folder / "buy")
        self.amount_.save_model(str(folder / "amount.txt"))
        config = {"format_version": FORMAT_VERSION, "model": self.model_name,
                  "params": self.get_params()}
        (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2, sort_keys=True))
        return folder

    @classmethod
    def load(cls, path: str | Path) -> HurdleRevenueRegressor:
        folder = Path(path)
        config = _config(folder, cls.model_name)
        model = cls(**config["params"])
        model.buy_ = BoostedBinaryClassifier.load(folder / "buy")
        model.amount_ = lgb.Booster(model_file=str(folder / "amount.txt"))
        return model


def _config(folder: Path, model_name: str) -> dict[str, Any]:
    config = json.loads((folder / CONFIG_FILE).read_text())
    if config.get("format_version") != FORMAT_VERSION or config.get("model") != model_name:
        raise ValueError(f"{folder} does not hold a {model_name} model")
    return config
