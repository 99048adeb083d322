"""TARNet: shared representation, one outcome head per arm."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from torch import nn

from ..networks import MultiHeadUpliftNet
from .base import DeepUpliftEstimator

__all__ = ["TARNet"]


@dataclass(kw_only=True, eq=False, repr=False)
class TARNet(DeepUpliftEstimator):
    """Treatment-Agnostic Representation Network.

    Shalit, Johansson & Sontag (2017), "Estimating individual treatment
    effect: generalization bounds and algorithms", ICML: ``Phi(x)`` is shared
    by all arms and each arm ``a`` has its own head ``h_a(Phi(x))``, trained
    on the factual loss only. The effect of arm ``k`` is
    ``h_k(Phi(x)) - h_0(Phi(x))``. Defaults follow the paper's IHDP setting:
    3 ELU layers of 200 units, heads of 2 x 100.
    """

    estimator_name: ClassVar[str] = "tarnet"

    representation_layers: tuple[int, ...] = (200, 200, 200)
    head_layers: tuple[int, ...] = (100, 100)
    activation: str = "elu"
    dropout: float = 0.0

    def _build_network(self, n_inputs: int, n_arms: int, out_width: int) -> nn.Module:
        return MultiHeadUpliftNet(
            n_inputs,
            n_arms,
            out_width,
            representation_layers=self._setting("representation_layers"),
            head_layers=self._setting("head_layers"),
            activation=self._setting("activation"),
            dropout=self.dropout,
        )
