"""DESCN: entire-space response heads plus a cross (X) network."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ..losses import cross_losses, entire_space_loss, factual_loss
from ..networks import CrossUpliftNet
from .base import DeepUpliftEstimator

__all__ = ["DESCN"]


@dataclass(kw_only=True, eq=False, repr=False)
class DESCN(DeepUpliftEstimator):
    """Deep Entire Space Cross Network, for K arms.

    Zhong, Zheng, Wang et al. (2022), KDD; checked against the authors' code
    (github.com/kailiang-zhong/DESCN, ``main.py``). The network is
    :class:`models_dl.networks.CrossUpliftNet`; with ``w`` the arm-balancing
    row weights (the reference's ``reweight_sample``) the objective is::

        factual_weight * factual loss of mu_t
        + propensity_weight * CE(pi(x), t)
        + entire_space_weight * sum_a loss(pi_a mu_a, 1[t = a] y)
        + cross_treated_weight * loss(mu_0 + tau'_t, y)       (treated rows)
        + cross_control_weight * mean_k loss(mu_k - tau'_k, y)  (control rows)

    (:func:`models_dl.losses.entire_space_loss`,
    :func:`models_dl.losses.cross_losses`). The weights default to the
    reference's ACIC configuration (``prpsy_w=0.5``, ``escvr*_w=1``,
    ``mu1hat_w=0.8``, ``mu0hat_w=0.3``, ``h*_w=0``: the responses learn only
    through the entire-space and cross terms). Early stopping still watches
    the factual loss of the response heads, which are what ``predict`` uses
    (effect ``mu_k - mu_0``, the reference's default).

    On confounded data (IHDP) it ranks the true effects worse than CFRNet:
    the propensity head and the ``pi_a mu_a`` targets leak the propensity
    into the effect, which the observed-outcome Qini of confounded data
    rewards (figures in ``benchmarks/RESULTS.md``, DESCN). Under
    randomisation the propensity is constant and there is nothing to leak.
    """

    estimator_name: ClassVar[str] = "descn"
    train_members_together: ClassVar[bool] = False  # its loss replaces the base one

    representation_layers: tuple[int, ...] = (200, 200, 200)
    head_layers: tuple[int, ...] = (100, 100)
    activation: str = "elu"
    dropout: float = 0.0
    factual_weight: float = 0.0
    propensity_weight: float = 0.5
    entire_space_weight: float = 1.0
    cross_treated_weight: float = 0.8
    cross_control_weight: float = 0.3

    def _build_network(self, n_inputs: int, n_arms: int, out_width: int) -> nn.Module:
        return CrossUpliftNet(
            n_inputs,
            n_arms,
            out_width,
            representation_layers=self._setting("representation_layers"),
            head_layers=self._setting("head_layers"),
            activation=self._setting("activation"),
            dropout=self.dropout,
        )

    def _balance_arms(self) -> bool:
        return True

    def _loss(
        self, network: nn.Module, batch: dict[str, torch.Tensor], penalise: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor]:
        output = network(batch["x"])
        t, y, w = batch["t"], batch["y"], batch["w"]
        norm = w.sum().clamp_min(1e-12)
        rows = torch.arange(t.shape[0], device=t.device)
        criterion = (factual_loss(output.outcomes[rows, t], y, self.outcome_type_) * w).sum() / norm
        if not penalise:
            return criterion, criterion
        treated, control = cross_losses(output.outcomes, output.pseudo_effects, t, y, self.outcome_type_)
        per_row = (
            self.propensity_weight * F.cross_entropy(output.propensity_logits, t, reduction="none")
            + self.entire_space_weight
            * entire_space_loss(output.outcomes, output.propensity_logits, t, y, self.outcome_type_)
            + self.cross_treated_weight * treated
            + self.cross_control_weight * control
        )
        return self.factual_weight * criterion + (per_row * w).sum() / norm, criterion
