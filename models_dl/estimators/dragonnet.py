"""DragonNet: TARNet with a propensity head and targeted regularisation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ..losses import targeted_regularization_loss
from ..networks import MultiHeadUpliftNet, NetworkOutput
from .base import DeepUpliftEstimator

__all__ = ["DragonNet"]


@dataclass(kw_only=True, eq=False, repr=False)
class DragonNet(DeepUpliftEstimator):
    """DragonNet with targeted regularisation, for K arms.

    Shi, Blei & Veitch (2019), "Adapting Neural Networks for the Estimation
    of Treatment Effects", NeurIPS. The shared representation also feeds a
    propensity head ``g(x) = softmax(W Phi(x))``, so ``Phi`` is pushed to keep
    only what predicts treatment *and* outcome. The objective is::

        factual loss + propensity_weight * CE(g(x), t)
                     + targeted_weight * targeted regularisation

    (see :func:`models_dl.losses.targeted_regularization_loss` for the
    K-arm clever covariate). The paper uses weights 1 and 1.
    """

    estimator_name: ClassVar[str] = "dragonnet"
    train_members_together: ClassVar[bool] = False  # the targeted penalty reads the network's own epsilon

    representation_layers: tuple[int, ...] = (200, 200, 200)
    head_layers: tuple[int, ...] = (100, 100)
    activation: str = "elu"
    dropout: float = 0.0
    propensity_weight: float = 1.0
    targeted_weight: float = 1.0

    def _build_network(self, n_inputs: int, n_arms: int, out_width: int) -> nn.Module:
        return MultiHeadUpliftNet(
            n_inputs,
            n_arms,
            out_width,
            representation_layers=self._setting("representation_layers"),
            head_layers=self._setting("head_layers"),
            activation=self._setting("activation"),
            dropout=self.dropout,
            propensity_head=True,
            targeted_regularization=True,
        )

    def _penalty(
        self, network: nn.Module, output: NetworkOutput, batch: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        w = batch["w"]
        norm = w.sum().clamp_min(1e-12)
        propensity = F.cross_entropy(output.propensity_logits, batch["t"], reduction="none")
        targeted = targeted_regularization_loss(
            output.outcomes,
            output.propensity_logits,
            network.epsilon,
            batch["t"],
            batch["y"],
            self.outcome_type_,
        )
        return (
            self.propensity_weight * (propensity * w).sum() / norm
            + self.targeted_weight * (targeted * w).sum() / norm
        )
