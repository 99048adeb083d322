"""Uplift network architectures.

All networks map features ``x`` to a :class:`NetworkOutput` whose
``outcomes`` holds the raw head outputs for *every* arm, shape
``(batch, n_arms, width)``; the losses pick the factual arm and the
estimators turn the raw outputs into expected outcomes. ``width`` depends on
the outcome family (see :func:`outcome_width`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from .blocks import ArmMLP, mlp

__all__ = [
    "CrossUpliftNet",
    "ExplicitUpliftNet",
    "MultiHeadUpliftNet",
    "NetworkOutput",
    "SingleModelNet",
    "outcome_width",
]


def outcome_width(outcome_type: str) -> int:
    """Raw outputs per arm: a logit or a mean (1), or the ZILN triple (3)."""
    return 3 if outcome_type == "zero_inflated" else 1


@dataclass
class NetworkOutput:
    outcomes: torch.Tensor  # (batch, n_arms, width)
    representation: torch.Tensor | None = None  # (batch, rep_dim)
    propensity_logits: torch.Tensor | None = None  # (batch, n_arms)
    pseudo_effects: torch.Tensor | None = None  # (batch, n_arms - 1, width), DESCN only


class MultiHeadUpliftNet(nn.Module):
    """Shared representation ``Phi(x)`` followed by one outcome head per arm.

    This is the TARNet architecture of Shalit, Johansson & Sontag (2017),
    "Estimating individual treatment effect: generalization bounds and
    algorithms" (ICML), generalised from 2 to ``n_arms`` heads. The same
    module serves

    * **TARNet / CFRNet** (``propensity_head=False``; CFR adds an IPM penalty
      on ``representation`` in its loss),
    * **DragonNet** (Shi, Blei & Veitch 2019, "Adapting Neural Networks for
      the Estimation of Treatment Effects", NeurIPS): a linear propensity
      head on ``Phi(x)`` (softmax over arms) and the targeted-regularisation
      fluctuation parameters ``epsilon``, one per treated arm,
    * **neural T-learner**: ``representation_layers=()`` makes ``Phi`` the
      identity, so every head is an independent network on ``x``.

    ``normalize_representation`` projects ``Phi(x)`` to the unit sphere, as in
    Shalit et al.'s code, so an IPM penalty cannot be shrunk by scaling the
    representation down.
    """

    def __init__(
        self,
        n_features: int,
        n_arms: int,
        out_width: int,
        representation_layers: Sequence[int] = (200, 200, 200),
        head_layers: Sequence[int] = (100, 100),
        activation: str = "elu",
        dropout: float = 0.0,
        propensity_head: bool = False,
        targeted_regularization: bool = False,
        normalize_representation: bool = False,
    ) -> None:
        super().__init__()
        self.n_arms = n_arms
        self.normalize_representation = normalize_representation
        if representation_layers:
            self.representation = mlp(n_features, representation_layers, activation, dropout)
            rep_dim = representation_layers[-1]
        else:
            self.representation = nn.Identity()
            rep_dim = n_features
        self.heads = ArmMLP(n_arms, rep_dim, head_layers, out_width, activation, dropout)
        self.propensity = nn.Linear(rep_dim, n_arms) if propensity_head else None
        # epsilon_k of the targeted fluctuation Q~(t, x) = Q(t, x) + sum_k eps_k H_k(t, x)
        self.epsilon = nn.Parameter(torch.zeros(n_arms - 1)) if targeted_regularization else None

    def forward(self, x: torch.Tensor) -> NetworkOutput:
        phi = self.representation(x)
        if self.normalize_representation:
            phi = phi / phi.norm(dim=1, keepdim=True).clamp_min(1e-6)
        propensity = self.propensity(phi) if self.propensity is not None else None
        return NetworkOutput(self.heads(phi), phi, propensity)


class SingleModelNet(nn.Module):
    """Neural S-learner: one network on ``[x, one_hot(t)]``.

    Kuenzel et al. (2019), "Metalearners for estimating heterogeneous
    treatment effects using machine learning" (PNAS), with an MLP as the base
    learner. Every arm is evaluated by swapping the one-hot block, so the
    output has the same ``(batch, n_arms, width)`` layout as the multi-head
    networks.
    """

    def __init__(
        self,
        n_features: int,
        n_arms: int,
        out_width: int,
        hidden_layers: Sequence[int] = (200, 200, 200),
        activation: str = "elu",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.n_arms = n_arms
        self.network = mlp(n_features + n_arms, hidden_layers, activation, dropout, out_width)

    def forward(self, x: torch.Tensor) -> NetworkOutput:
        batch = x.shape[0]
        arms = torch.eye(self.n_arms, dtype=x.dtype, device=x.device)
        stacked = torch.cat(
            [
                x.unsqueeze(1).expand(batch, self.n_arms, x.shape[1]),
                arms.unsqueeze(0).expand(batch, self.n_arms, self.n_arms),
            ],
            dim=2,
        )
        out = self.network(stacked.reshape(batch * self.n_arms, -1))
        return NetworkOutput(out.reshape(batch, self.n_arms, -1))


class ExplicitUpliftNet(nn.Module):
    """Control tower plus an explicit uplift tower per treated arm.

    The explicit-uplift parameterisation of EUEN (Ke, Liu, Zhu et al. 2021,
    "Addressing Exposure Bias in Uplift Modeling for Large-scale Online
    Advertising", ICDM): ``out_0(x) = c(x)`` and ``out_k(x) = c(x) + u_k(x)``
    on the link scale (logit or mean), with ``c`` and ``u`` separate MLPs on
    ``x``. The effect has its own network and its own capacity instead of
    being the difference of two large, noisy heads; weight decay on ``u``
    shrinks it towards no heterogeneity (cf. Curth & van der Schaar 2021,
    "On Inductive Biases for Heterogeneous Treatment Effect Estimation").
    The exposure modelling of EUEN does not apply here (no exposure labels)
    and is left out.
    """

    def __init__(
        self,
        n_features: int,
        n_arms: int,
        out_width: int,
        control_layers: Sequence[int] = (200, 200, 100),
        uplift_layers: Sequence[int] = (100, 100),
        activation: str = "elu",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.n_arms = n_arms
        self.control = mlp(n_features, control_layers, activation, dropout, out_width)
        self.uplift = ArmMLP(n_arms - 1, n_features, uplift_layers, out_width, activation, dropout)

    def forward(self, x: torch.Tensor) -> NetworkOutput:
        control = self.control(x)
        uplift = self.uplift(x)
        return NetworkOutput(torch.cat([control.unsqueeze(1), control.unsqueeze(1) + uplift], dim=1))


class CrossUpliftNet(nn.Module):
    """DESCN: shared representation, outcome heads, propensity head and a
    pseudo-effect head.

    Zhong, Zheng, Wang et al. (2022), "DESCN: Deep Entire Space Cross
    Networks for Individual Treatment Effect Estimation", KDD, generalised
    from 2 to ``n_arms`` arms. From ``Phi(x)`` (unit-normalised, as in the
    reference code's ``normalization="divide"``):

    * ``outcomes``: one head per arm, the responses ``mu_a`` (raw outputs);
    * ``propensity_logits``: an MLP with a softmax over arms, ``pi_a(x)``;
    * ``pseudo_effects``: the "X network" ``tau'_k(x)`` per treated arm, on
      the link scale, used only by the cross losses of
      :class:`models_dl.estimators.DESCN`.

    The effect is still ``mu_k - mu_0`` (the reference's default
    ``tau = h1 - h0``); the propensity and pseudo-effect heads shape the
    shared representation through their losses.
    """

    def __init__(
        self,
        n_features: int,
        n_arms: int,
        out_width: int,
        representation_layers: Sequence[int] = (200, 200, 200),
        head_layers: Sequence[int] = (100, 100),
        activation: str = "elu",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.n_arms = n_arms
        self.representation = mlp(n_features, representation_layers, activation, dropout)
        rep_dim = representation_layers[-1]
        self.heads = ArmMLP(n_arms, rep_dim, head_layers, out_width, activation, dropout)
        self.propensity = mlp(rep_dim, head_layers, activation, dropout, n_arms)
        self.pseudo_effect = ArmMLP(n_arms - 1, rep_dim, head_layers, out_width, activation, dropout)

    def forward(self, x: torch.Tensor) -> NetworkOutput:
        phi = self.representation(x)
        phi = phi / phi.norm(dim=1, keepdim=True).clamp_min(1e-6)
        return NetworkOutput(
            self.heads(phi), phi, self.propensity(phi), self.pseudo_effect(phi)
        )
