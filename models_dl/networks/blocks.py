"""Building blocks: activations, MLPs and MLPs with one set of weights per arm."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["ArmMLP", "activation_layer", "mlp"]

_ACTIVATIONS = {
    "elu": nn.ELU,
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
}


def activation_layer(name: str) -> nn.Module:
    """Return a fresh activation module by name (``elu`` is Shalit et al.'s choice)."""
    try:
        return _ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; choose from {sorted(_ACTIVATIONS)}") from None


def mlp(
    in_features: int,
    hidden: Sequence[int],
    activation: str = "elu",
    dropout: float = 0.0,
    out_features: int | None = None,
) -> nn.Sequential:
    """Dense layers ``in -> hidden[0] -> ... -> hidden[-1] (-> out)``.

    Every hidden layer is followed by the activation and, when ``dropout`` is
    positive, by dropout. The optional output layer is linear.
    """
    layers: list[nn.Module] = []
    width = in_features
    for units in hidden:
        layers.append(nn.Linear(width, units))
        layers.append(activation_layer(activation))
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = units
    if out_features is not None:
        layers.append(nn.Linear(width, out_features))
    return nn.Sequential(*layers)


class ArmLinear(nn.Module):
    """``n_arms`` independent linear maps evaluated in one batched matmul.

    Works arm-major: input ``(batch, in)`` (shared by every arm) or
    ``(arms, batch, in)``, output ``(arms, batch, out)``, so consecutive
    layers chain ``baddbmm`` calls without transposes (an ``einsum`` over a
    batch-major layout hit slow kernels for some widths on CPU).
    Initialised like :class:`torch.nn.Linear`, so a head behaves as if it
    were built from separate layers.
    """

    def __init__(self, n_arms: int, in_features: int, out_features: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_arms, in_features, out_features))
        self.bias = nn.Parameter(torch.empty(n_arms, 1, out_features))
        bound = 1.0 / math.sqrt(in_features)
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            x = x.unsqueeze(0).expand(self.weight.shape[0], *x.shape)
        return torch.baddbmm(self.bias, x, self.weight)


class ArmMLP(nn.Module):
    """One MLP per treatment arm (the hypothesis heads of TARNet / CFR).

    Equivalent to ``n_arms`` separate :func:`mlp` modules, but all arms are
    evaluated for every row in a few batched matmuls: predicting every
    potential outcome costs one forward pass, and K arms do not mean K Python
    loops per batch. Input ``(batch, in)``, output ``(batch, arms, out)``.
    """

    def __init__(
        self,
        n_arms: int,
        in_features: int,
        hidden: Sequence[int],
        out_features: int,
        activation: str = "elu",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = in_features
        for units in hidden:
            layers.append(ArmLinear(n_arms, width, units))
            layers.append(activation_layer(activation))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = units
        layers.append(ArmLinear(n_arms, width, out_features))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x).transpose(0, 1)
