"""Search spaces, MBConv layer keys, model builders and exporters."""

from models.architecture import format_architecture, parse_architecture
from models.errors import UserInputError
from models.layer_key import Activation, InvalidLayerKey, LayerKey, Op, parse
from models.search_space import Candidate, InvalidArchitecture, LayerSlot, SearchSpace
from models.spaces import DEFAULT_SPACE, UnknownSearchSpace, get_space

__all__ = [
    "DEFAULT_SPACE",
    "Activation",
    "Candidate",
    "InvalidArchitecture",
    "InvalidLayerKey",
    "LayerKey",
    "LayerSlot",
    "Op",
    "SearchSpace",
    "UnknownSearchSpace",
    "UserInputError",
    "format_architecture",
    "get_space",
    "parse",
    "parse_architecture",
]
