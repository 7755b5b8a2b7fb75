"""Search spaces, MBConv layer keys, model builders and exporters."""

from models.layer_key import Activation, LayerKey, Op, parse
from models.search_space import Candidate, InvalidArchitecture, LayerSlot, SearchSpace
from models.spaces import UnknownSearchSpace, get_space

__all__ = [
    "Activation",
    "Candidate",
    "InvalidArchitecture",
    "LayerKey",
    "LayerSlot",
    "Op",
    "SearchSpace",
    "UnknownSearchSpace",
    "get_space",
    "parse",
]
