"""CFRNet: TARNet plus a penalty that balances the arms' representations."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from ..losses import ipm_penalty
from ..networks import MultiHeadUpliftNet, NetworkOutput
from .base import DeepUpliftEstimator

__all__ = ["CFRNet"]


@dataclass(kw_only=True, eq=False, repr=False)
class CFRNet(DeepUpliftEstimator):
    """Counterfactual Regression (CFR-Wass / CFR-MMD).

    Shalit, Johansson & Sontag (2017), ICML. The objective is the weighted
    factual loss plus ``alpha * IPM(Phi(x) | t = k, Phi(x) | t = 0)``,
    averaged over the treated arms ``k``; the IPM bounds the gap between
    factual and counterfactual error, so minimising it makes the heads
    trustworthy where an arm has few observed rows. As in the paper's code
    the representation is normalised to the unit sphere and rows are
    reweighted so that every arm carries the same total weight.

    Parameters
    ----------
    alpha:
        Weight of the IPM term.
    ipm:
        ``"wasserstein"`` (Sinkhorn), ``"mmd"`` (Gaussian kernel) or
        ``"mmd_linear"``.
    """

    estimator_name: ClassVar[str] = "cfrnet"

    representation_layers: tuple[int, ...] = (200, 200, 200)
    head_layers: tuple[int, ...] = (100, 100)
    activation: str = "elu"
    dropout: float = 0.0
    alpha: float = 1.0
    ipm: str = "wasserstein"
    normalize_representation: bool = True
    balance_arms: bool = True

    def _build_network(self, n_inputs: int, n_arms: int, out_width: int) -> nn.Module:
        return MultiHeadUpliftNet(
            n_inputs,
            n_arms,
            out_width,
            representation_layers=self.representation_layers,
            head_layers=self.head_layers,
            activation=self.activation,
            dropout=self.dropout,
            normalize_representation=self.normalize_representation,
        )

    def _balance_arms(self) -> bool:
        return self.balance_arms

    def _penalty(
        self, network: nn.Module, output: NetworkOutput, batch: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        if self.alpha == 0:
            return output.outcomes.new_zeros(())
        return self.alpha * ipm_penalty(
            output.representation, batch["t"], output.outcomes.shape[1], self.ipm
        )
