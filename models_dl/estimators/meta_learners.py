"""Neural S- and T-learners: the baselines every representation method must beat."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from torch import nn

from ..networks import MultiHeadUpliftNet, SingleModelNet
from .base import DeepUpliftEstimator

__all__ = ["NeuralSLearner", "NeuralTLearner"]


@dataclass(kw_only=True, eq=False, repr=False)
class NeuralSLearner(DeepUpliftEstimator):
    """S-learner with an MLP: one network on ``[x, one_hot(arm)]``.

    Kuenzel, Sekhon, Bickel & Yu (2019), "Metalearners for estimating
    heterogeneous treatment effects using machine learning", PNAS. The
    effect is ``mu(x, k) - mu(x, 0)``; nothing forces the network to use
    the arm input, which is why it tends to shrink effects towards zero.
    """

    estimator_name: ClassVar[str] = "s_learner"

    hidden_layers: tuple[int, ...] = (200, 200, 200, 100)
    activation: str = "elu"
    dropout: float = 0.0

    def _build_network(self, n_inputs: int, n_arms: int, out_width: int) -> nn.Module:
        return SingleModelNet(
            n_inputs, n_arms, out_width,
            self._setting("hidden_layers"), self._setting("activation"), self.dropout,
        )


@dataclass(kw_only=True, eq=False, repr=False)
class NeuralTLearner(DeepUpliftEstimator):
    """T-learner with MLPs: an independent network per arm, nothing shared.

    Kuenzel et al. (2019). Implemented as a multi-head network with an empty
    representation, so every head is a full MLP on ``x`` that only sees its
    own arm's rows.
    """

    estimator_name: ClassVar[str] = "t_learner"

    hidden_layers: tuple[int, ...] = (200, 200, 100)
    activation: str = "elu"
    dropout: float = 0.0

    def _build_network(self, n_inputs: int, n_arms: int, out_width: int) -> nn.Module:
        return MultiHeadUpliftNet(
            n_inputs,
            n_arms,
            out_width,
            representation_layers=(),
            head_layers=self._setting("hidden_layers"),
            activation=self._setting("activation"),
            dropout=self.dropout,
        )
