"""A search space as data: what a lab writes in YAML or JSON and registers with the service.

The spec names the parts of a MobileNet-like network and the choices in them::

    schema_version: 1
    name: ofa-mbv3-w1.0
    input: {channels: 3, resolutions: [128, 160, 192, 224]}
    stem:                      # fixed layers; each takes the shape the one before gives
      - {op: conv, out: 16, kernel: 3, stride: 2, act: hswish}
      - {op: mbconv, out: 16, kernel: 3, expansion: 1, act: relu}
    stages:                    # searchable MBConv layers
      - widths: [24]           # output channels to choose from
        depths: [2, 3, 4]      # how many layers run (the first ones)
        stride: 2              # of the stage's first layer
        act: relu
        candidates: [k3e3, k3e4, k3e6, k5e3, k5e4, k5e6, k7e3, k7e4, k7e6]
        skip: false            # true: every layer but the first may also be skipped
        se: input              # what a candidate's "se" means: input/4 or mid (OFA)
    head:
      - {op: conv, out: 960, kernel: 1, act: hswish}
      - {op: pool}
      - {op: conv, out: 1280, kernel: 1, act: hswish}
      - {op: logits, classes: 1000}

Plain frozen dataclasses: the service validates them with pydantic (latency_api.schemas.spaces)
and ``models.search_space`` decodes them into networks of layer keys.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from models.errors import UserInputError

SPEC_VERSION: Final = 1

LayerOp = Literal["conv", "mbconv", "pool", "logits"]
ActivationName = Literal["relu6", "relu", "hswish", "swish"]
SeWidth = Literal["input", "mid"]

# What the exporters and runtimes are exercised with: a spec beyond these is refused, so that
# a registration cannot queue models nobody has checked can be built and timed.
MAX_RESOLUTION: Final = 512
MAX_CHANNELS: Final = 4096
KERNELS: Final = (1, 3, 5, 7, 9)
MAX_EXPANSION: Final = 8
MAX_DEPTH: Final = 12
MAX_STAGES: Final = 16
MAX_CHOICES: Final = 64
MAX_CLASSES: Final = 100_000


class SpecError(UserInputError):
    """A spec that does not describe a buildable space; ``path`` names the field."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path


@dataclass(frozen=True)
class InputSpec:
    channels: int = 3
    resolutions: tuple[int, ...] = (224,)


@dataclass(frozen=True)
class LayerSpec:
    """A fixed layer of the stem or the head; its input is what the layer before gives."""

    op: LayerOp
    out: int = 0  # output channels of a conv or an mbconv
    kernel: int = 1
    stride: int = 1
    expansion: int = 1
    se: bool = False
    se_width: SeWidth = "input"
    act: ActivationName = "relu6"
    classes: int = 0  # of logits


@dataclass(frozen=True)
class StageSpec:
    """Searchable MBConv layers: ``max(depths)`` slots, of which the first ``depth`` run."""

    widths: tuple[int, ...]
    depths: tuple[int, ...]
    stride: int
    candidates: tuple[str, ...]
    act: ActivationName = "relu6"
    skip: bool = False
    se: SeWidth = "input"


# An elastic space (width, depth and resolution vary) small enough to read: the example of the
# service's API documentation and of the README.
EXAMPLE: Final[dict[str, Any]] = {
    "schema_version": SPEC_VERSION,
    "name": "my-lab-space",
    "description": "Two elastic stages at 96 or 128 px",
    "input": {"channels": 3, "resolutions": [96, 128]},
    "stem": [{"op": "conv", "out": 16, "kernel": 3, "stride": 2, "act": "hswish"}],
    "stages": [
        {"widths": [16, 24], "depths": [1, 2], "stride": 2, "candidates": ["k3e3", "k5e6"]},
        {"widths": [32], "depths": [2], "stride": 2, "candidates": ["k3e3", "k3e6"], "skip": True},
    ],
    "head": [
        {"op": "conv", "out": 256, "kernel": 1},
        {"op": "pool"},
        {"op": "logits", "classes": 10},
    ],
}


@dataclass(frozen=True)
class SpaceSpec:
    name: str
    stages: tuple[StageSpec, ...]
    input: InputSpec = field(default_factory=InputSpec)
    stem: tuple[LayerSpec, ...] = ()
    head: tuple[LayerSpec, ...] = ()
    description: str = ""
    schema_version: int = SPEC_VERSION

    def to_dict(self) -> dict[str, Any]:
        plain: dict[str, Any] = _plain(asdict(self))
        return plain

    def canonical_json(self) -> str:
        """The spec as canonical JSON: what its hash is taken of (the name included)."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    def digest(self) -> str:
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def spec_from_dict(data: Any) -> SpaceSpec:
    """A spec from parsed YAML/JSON, checked field by field; :class:`SpecError` names the field.

    The service validates the same way through pydantic (latency_api.schemas.spaces); this is
    the path for files read where pydantic is not the caller's tool (the built-in spec files).
    """
    from pydantic import TypeAdapter, ValidationError

    try:
        return TypeAdapter(SpaceSpec).validate_python(data)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "spec"
        raise SpecError(where, first["msg"]) from None


def load_spec(path: Path | str) -> SpaceSpec:
    """A spec from a YAML or JSON file (JSON is YAML)."""
    import yaml  # here: the client reads no files and installs without PyYAML

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise SpecError(str(path), f"not YAML or JSON: {error}") from None
    return spec_from_dict(data)
