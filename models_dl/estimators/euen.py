"""EUEN-style explicit uplift network."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from torch import nn

from ..networks import ExplicitUpliftNet
from .base import DeepUpliftEstimator

__all__ = ["ExplicitUpliftEstimator"]


@dataclass(kw_only=True, eq=False, repr=False)
class ExplicitUpliftEstimator(DeepUpliftEstimator):
    """Explicit uplift network: ``y_k = c(x) + u_k(x)`` on the link scale.

    See :class:`models_dl.networks.ExplicitUpliftNet` (Ke et al. 2021, EUEN,
    without the exposure part). Trained on the factual loss like TARNet.
    """

    estimator_name: ClassVar[str] = "euen"

    control_layers: tuple[int, ...] = (200, 200, 100)
    uplift_layers: tuple[int, ...] = (100, 100)
    activation: str = "elu"
    dropout: float = 0.0

    def _build_network(self, n_inputs: int, n_arms: int, out_width: int) -> nn.Module:
        return ExplicitUpliftNet(
            n_inputs,
            n_arms,
            out_width,
            control_layers=self.control_layers,
            uplift_layers=self.uplift_layers,
            activation=self._setting("activation"),
            dropout=self.dropout,
        )
