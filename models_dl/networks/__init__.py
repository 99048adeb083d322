"""PyTorch modules, kept apart from data handling and the training loop.

* :mod:`.blocks`: plain MLPs and the per-arm batched MLP used as outcome heads.
* :mod:`.uplift`: the uplift architectures (shared representation + heads,
  S-learner network, EUEN's explicit uplift network, DESCN's cross network).
"""

from .blocks import ArmMLP, activation_layer, mlp
from .uplift import (
    CrossUpliftNet,
    ExplicitUpliftNet,
    MultiHeadUpliftNet,
    NetworkOutput,
    SingleModelNet,
    outcome_width,
)

__all__ = [
    "ArmMLP",
    "CrossUpliftNet",
    "ExplicitUpliftNet",
    "MultiHeadUpliftNet",
    "NetworkOutput",
    "SingleModelNet",
    "activation_layer",
    "mlp",
    "outcome_width",
]
