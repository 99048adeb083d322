"""Deep uplift estimators (one module per family)."""

from .base import DeepUpliftEstimator
from .cfrnet import CFRNet
from .descn import DESCN
from .dragonnet import DragonNet
from .euen import ExplicitUpliftEstimator
from .meta_learners import NeuralSLearner, NeuralTLearner
from .tarnet import TARNet

__all__ = [
    "CFRNet",
    "DESCN",
    "DeepUpliftEstimator",
    "DragonNet",
    "ExplicitUpliftEstimator",
    "NeuralSLearner",
    "NeuralTLearner",
    "TARNet",
]
