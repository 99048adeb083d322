"""PyTorch modules, kept apart from data handling and the training loop.

* :mod:`.blocks`: plain MLPs and the per-arm batched MLP used as outcome heads.
* :mod:`.uplift`: the uplift architectures (shared representation + heads,
  S-learner network, DESCN-style cross network).
"""

from .blocks import ArmMLP, activation_layer, mlp
from .uplift import (
    ExplicitUpliftNet,
    MultiHeadUpliftNet,
    NetworkOutput,
    SingleModelNet,
    outcome_width,
)

__all__ = [
    "ArmMLP",
    "ExplicitUpliftNet",
    "MultiHeadUpliftNet",
    "NetworkOutput",
    "SingleModelNet",
    "activation_layer",
    "mlp",
    "outcome_width",
]
