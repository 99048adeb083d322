"""Learned customer representations for segmentation.

:class:`TabularAutoencoder` compresses the point-in-time features (one-hot
and standardised by :class:`~models_dl.preprocessing.TabularPreprocessor`)
through a narrow code layer and is trained to reconstruct them (mean squared
error); the code is the embedding. The other candidate, the event-sequence
GRU's final hidden state, is :meth:`models_dl.sequence.EventSequenceClassifier.embed`.

:func:`nearest_centre` maps embeddings to the closest of a set of cluster
centres, which is how a saved segmentation places customers it never saw.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .networks import mlp
from .persistence import read_artifact, write_artifact
from .preprocessing import TabularPreprocessor
from .training import seeded, torch_threads

__all__ = ["TabularAutoencoder", "nearest_centre"]


class _Autoencoder(nn.Module):
    def __init__(self, n_inputs: int, hidden: int, code: int) -> None:
        super().__init__()
        self.encoder = mlp(n_inputs, (hidden,), "elu", 0.0, out_features=code)
        self.decoder = mlp(code, (hidden,), "elu", 0.0, out_features=n_inputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


class TabularAutoencoder:
    """Autoencoder over tabular features; ``transform`` gives the code (the embedding).

    The narrow default code (4 units) is what separated the behavioural
    types of experiments.demo_behaviour best among 3, 4, 6, 8, 16 and 32
    (adjusted Rand index; benchmarks/RESULTS.md): wider codes reconstruct
    the features better but keep their noise (region, age) too.
    """

    model_name = "tabular_autoencoder"

    def __init__(self, *, code_size: int = 4, hidden_size: int = 64, max_epochs: int = 60,
                 batch_size: int = 256, learning_rate: float = 3e-3,
                 random_state: int | None = 0, n_threads: int | None = None) -> None:
        self.code_size = code_size
        self.hidden_size = hidden_size
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.random_state = random_state
        self.n_threads = n_threads

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {"code_size": self.code_size, "hidden_size": self.hidden_size,
                "max_epochs": self.max_epochs, "batch_size": self.batch_size,
                "learning_rate": self.learning_rate, "random_state": self.random_state,
                "n_threads": self.n_threads}

    def fit(self, X: Any) -> TabularAutoencoder:
        self.preprocessor_ = TabularPreprocessor().fit(X)
        data = torch.from_numpy(self.preprocessor_.transform(X).astype(np.float32))
        n = data.shape[0]
        seed = 0 if self.random_state is None else int(self.random_state)
        with torch_threads(self.n_threads), seeded(seed):
            network = _Autoencoder(data.shape[1], self.hidden_size, self.code_size)
            optimiser = torch.optim.Adam(network.parameters(), lr=self.learning_rate)
            generator = torch.Generator().manual_seed(seed)
            self.loss_history_ = []
            for _ in range(self.max_epochs):
                order = torch.randperm(n, generator=generator)
                total = 0.0
                for start in range(0, n, self.batch_size):
                    batch = data[order[start:start + self.batch_size]]
                    loss = ((network(batch) - batch) ** 2).mean()
                    optimiser.zero_grad()
                    loss.backward()
                    optimiser.step()
                    total += loss.item() * batch.shape[0]
                self.loss_history_.append(total / n)
        self.network_ = network.eval()
        return self

    def transform(self, X: Any) -> np.ndarray:
        data = torch.from_numpy(self.preprocessor_.transform(X).astype(np.float32))
        with torch.no_grad():
            return self.network_.encoder(data).numpy()

    def reconstruction_error(self, X: Any) -> float:
        """Mean squared error per standardised feature (lower: the code keeps more)."""
        data = torch.from_numpy(self.preprocessor_.transform(X).astype(np.float32))
        with torch.no_grad():
            return float(((self.network_(data) - data) ** 2).mean())

    def save(self, path: str | Path) -> Path:
        config = {"model": self.model_name, "params": self.get_params(),
                  "preprocessor": self.preprocessor_.to_config(),
                  "n_inputs": int(self.preprocessor_.n_output_features_)}
        return write_artifact(path, config, self.network_.state_dict())

    @classmethod
    def load(cls, path: str | Path) -> TabularAutoencoder:
        config, state = read_artifact(path)
        if config.get("model") != cls.model_name:
            raise ValueError(f"{path} does not hold a {cls.model_name}")
        model = cls(**config["params"])
        model.preprocessor_ = TabularPreprocessor.from_config(config["preprocessor"])
        network = _Autoencoder(config["n_inputs"], model.hidden_size, model.code_size)
        network.load_state_dict(state)
        model.network_ = network.eval()
        return model


def nearest_centre(points: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Index of the closest centre (Euclidean) for each row of ``points``."""
    points = np.asarray(points, dtype=np.float64)
    centres = np.asarray(centres, dtype=np.float64)
    distance = ((points[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
    return distance.argmin(axis=1)
