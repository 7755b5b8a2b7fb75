"""Search spaces: fixed parts, searchable layers and their ordered candidates.

An *architecture* is one candidate index per searchable layer. Because a skip is only allowed
where it keeps channels and resolution, every searchable layer sees the same input whatever
the other layers chose; that is what makes a per-layer runtime table possible.
"""

from __future__ import annotations

import json
import math
import numbers
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from models.errors import UserInputError
from models.layer_key import DEFAULT_ACTIVATION, Activation, LayerKey, Op, parse

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

SCHEMA_VERSION: Final = 1
_CANDIDATE_RE: Final = re.compile(r"^k(?P<k>[1-9]\d*)e(?P<e>[1-9]\d*)(?P<se>se)?$")


class InvalidArchitecture(UserInputError):
    """An architecture that does not fit its search space; ``position`` is the bad layer."""

    def __init__(self, message: str, position: int | None = None) -> None:
        super().__init__(message)
        self.position = position


@dataclass(frozen=True, slots=True)
class Candidate:
    """One choice of a searchable layer: an MBConv shape, or skip."""

    op: Op
    kernel: int = 0
    expansion: int = 0
    se: bool = False

    @property
    def label(self) -> str:
        if self.op is Op.SKIP:
            return "skip"
        return f"k{self.kernel}e{self.expansion}" + ("se" if self.se else "")

    def __str__(self) -> str:
        return self.label

    @classmethod
    def parse(cls, label: str) -> Candidate:
        if label == "skip":
            return cls(Op.SKIP)
        match = _CANDIDATE_RE.match(label)
        if match is None:
            raise UserInputError(
                f"bad candidate {label!r}; expected 'skip' or k<kernel>e<expansion>[se], "
                "e.g. 'k5e6'"
            )
        return cls(Op.MBCONV, int(match["k"]), int(match["e"]), match["se"] is not None)


@dataclass(frozen=True, slots=True)
class LayerSlot:
    """A searchable layer: its fixed input/output shape and its ordered candidates."""

    hw: int
    cin: int
    cout: int
    stride: int
    candidates: tuple[Candidate, ...]
    act: Activation = DEFAULT_ACTIVATION

    @property
    def skippable(self) -> bool:
        return any(c.op is Op.SKIP for c in self.candidates)

    @property
    def hw_out(self) -> int:
        return -(-self.hw // self.stride)

    def key(self, index: int) -> LayerKey:
        candidate = self.candidates[index]
        if candidate.op is Op.SKIP:
            return LayerKey(Op.SKIP, self.hw, self.cin, self.cout)
        return LayerKey(
            Op.MBCONV,
            self.hw,
            self.cin,
            self.cout,
            kernel=candidate.kernel,
            expansion=candidate.expansion,
            stride=self.stride,
            se=candidate.se,
            act=self.act,
        )

    def candidate_keys(self) -> tuple[LayerKey, ...]:
        return tuple(self.key(i) for i in range(len(self.candidates)))


@dataclass(frozen=True)
class SearchSpace:
    name: str
    input_hw: int
    input_channels: int
    prefix: tuple[LayerKey, ...]
    layers: tuple[LayerSlot, ...]
    suffix: tuple[LayerKey, ...]
    description: str = ""

    def __post_init__(self) -> None:
        self._check_threading()

    # -- shape --------------------------------------------------------------------------------

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    @property
    def candidate_counts(self) -> tuple[int, ...]:
        return tuple(len(slot.candidates) for slot in self.layers)

    @property
    def size(self) -> int:
        """Number of distinct architectures."""
        return math.prod(self.candidate_counts)

    # -- architectures ------------------------------------------------------------------------

    def validate(self, arch: Sequence[int] | npt.ArrayLike) -> tuple[int, ...]:
        """Return the architecture as a tuple of ints, or raise naming the bad position."""
        # NumPy arrays are accepted without importing NumPy here: the wire schemas validate
        # architectures with this method in clients that have only pydantic and httpx.
        values = arch if isinstance(arch, Sequence) else _flat_list(arch)
        if len(values) != self.num_layers:
            raise InvalidArchitecture(
                f"architecture has {len(values)} entries; {self.name} has {self.num_layers} "
                "searchable layers (one candidate index each)"
            )
        out: list[int] = []
        for position, (value, slot) in enumerate(zip(values, self.layers, strict=True)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise InvalidArchitecture(
                    f"position {position}: {value!r} is not an integer candidate index", position
                )
            index = int(value)
            if not 0 <= index < len(slot.candidates):
                labels = ", ".join(f"{i}={c}" for i, c in enumerate(slot.candidates))
                raise InvalidArchitecture(
                    f"position {position}: candidate {index} out of range; choose one of {labels}",
                    position,
                )
            out.append(index)
        return tuple(out)

    def decode(self, arch: Sequence[int] | npt.ArrayLike) -> tuple[LayerKey, ...]:
        """The searchable layers' keys of an architecture (skips included, as skip keys)."""
        return tuple(slot.key(i) for slot, i in zip(self.layers, self.validate(arch), strict=True))

    def network(self, arch: Sequence[int] | npt.ArrayLike) -> tuple[LayerKey, ...]:
        """Every layer of the whole network in order: fixed prefix, chosen layers, suffix."""
        return self.prefix + self.decode(arch) + self.suffix

    def encode(self, keys: Iterable[LayerKey | str]) -> tuple[int, ...]:
        """Inverse of :meth:`decode`: searchable-layer keys back to candidate indices."""
        parsed = [k if isinstance(k, LayerKey) else parse(k) for k in keys]
        if len(parsed) != self.num_layers:
            raise InvalidArchitecture(
                f"got {len(parsed)} layer keys; {self.name} has {self.num_layers} searchable layers"
            )
        out = []
        for position, (key, slot) in enumerate(zip(parsed, self.layers, strict=True)):
            try:
                out.append(slot.candidate_keys().index(key))
            except ValueError:
                options = ", ".join(str(k) for k in slot.candidate_keys())
                raise InvalidArchitecture(
                    f"position {position}: {key} is not a candidate here; "
                    f"expected one of {options}",
                    position,
                ) from None
        return tuple(out)

    def sample(self, n: int, seed: int) -> npt.NDArray[np.int64]:
        """``n`` architectures drawn uniformly and independently per layer, as an (n, L) array."""
        import numpy as np

        if n < 0:
            raise UserInputError(f"cannot sample {n} architectures; n must be >= 0")
        rng = np.random.default_rng(seed)
        counts = np.asarray(self.candidate_counts, dtype=np.int64)
        return rng.integers(0, counts, size=(n, self.num_layers), dtype=np.int64)

    def variants(self, include_skip: bool = False) -> tuple[LayerKey, ...]:
        """Every distinct layer variant of the space, fixed parts included, in network order.

        This is what an agent profiles. Skip is an identity with no cost of its own, so it is
        left out unless asked for.
        """
        keys: dict[LayerKey, None] = dict.fromkeys(self.prefix)
        for slot in self.layers:
            keys.update(
                dict.fromkeys(
                    k for k in slot.candidate_keys() if include_skip or k.op is not Op.SKIP
                )
            )
        keys.update(dict.fromkeys(self.suffix))
        return tuple(keys)

    # -- serialisation ------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "name": self.name,
            "description": self.description,
            "input_hw": self.input_hw,
            "input_channels": self.input_channels,
            "prefix": [str(k) for k in self.prefix],
            "layers": [
                {
                    "hw": s.hw,
                    "cin": s.cin,
                    "cout": s.cout,
                    "stride": s.stride,
                    "act": s.act.value,
                    "candidates": [c.label for c in s.candidates],
                }
                for s in self.layers
            ],
            "suffix": [str(k) for k in self.suffix],
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SearchSpace:
        version = data.get("schema_version", SCHEMA_VERSION)
        if version != SCHEMA_VERSION:
            raise ValueError(
                f"search space schema_version {version} is not supported "
                f"(expected {SCHEMA_VERSION})"
            )
        try:
            layers = tuple(
                LayerSlot(
                    hw=int(s["hw"]),
                    cin=int(s["cin"]),
                    cout=int(s["cout"]),
                    stride=int(s["stride"]),
                    candidates=tuple(Candidate.parse(c) for c in s["candidates"]),
                    act=Activation(s.get("act", DEFAULT_ACTIVATION)),
                )
                for s in data["layers"]
            )
            return cls(
                name=str(data["name"]),
                description=str(data.get("description", "")),
                input_hw=int(data["input_hw"]),
                input_channels=int(data["input_channels"]),
                prefix=tuple(parse(k) for k in data["prefix"]),
                layers=layers,
                suffix=tuple(parse(k) for k in data["suffix"]),
            )
        except KeyError as missing:
            raise ValueError(f"search space definition lacks field {missing}") from None

    @classmethod
    def from_json(cls, text: str) -> SearchSpace:
        return cls.from_dict(json.loads(text))

    # -- invariants ---------------------------------------------------------------------------

    def _check_threading(self) -> None:
        """Channels and resolution must flow from each layer into the next."""
        hw, channels = self.input_hw, self.input_channels
        where = f"search space {self.name!r}"
        for n, key in enumerate(self.prefix):
            _expect(key.hw, key.cin, hw, channels, f"{where}: prefix layer {n} ({key})")
            hw, channels = key.hw_out, key.cout
        for n, slot in enumerate(self.layers):
            _expect(slot.hw, slot.cin, hw, channels, f"{where}: searchable layer {n}")
            if not slot.candidates:
                raise ValueError(f"{where}: searchable layer {n} has no candidates")
            if len(set(slot.candidates)) != len(slot.candidates):
                raise ValueError(f"{where}: searchable layer {n} lists a candidate twice")
            if slot.skippable and (slot.stride != 1 or slot.cin != slot.cout):
                raise ValueError(
                    f"{where}: searchable layer {n} offers skip but changes shape "
                    f"(i{slot.cin}->o{slot.cout}, s{slot.stride}); skip needs s1 and i == o"
                )
            slot.candidate_keys()  # constructs every candidate, so an impossible one fails here
            hw, channels = slot.hw_out, slot.cout
        for n, key in enumerate(self.suffix):
            _expect(key.hw, key.cin, hw, channels, f"{where}: suffix layer {n} ({key})")
            hw, channels = key.hw_out, key.cout


def _flat_list(arch: Any) -> list[Any]:
    """The entries of an array-like (a NumPy array, say), flattened, as Python scalars."""
    reshape = getattr(arch, "reshape", None)
    if reshape is None:
        raise InvalidArchitecture(
            f"an architecture is a sequence of candidate indices, not {type(arch).__name__}"
        )
    values: list[Any] = reshape(-1).tolist()
    return values


def _expect(hw: int, cin: int, want_hw: int, want_cin: int, where: str) -> None:
    if (hw, cin) != (want_hw, want_cin):
        raise ValueError(
            f"{where} takes hw{hw}_i{cin} but the layer before it gives hw{want_hw}_i{want_cin}"
        )


@dataclass(frozen=True, slots=True)
class Stage:
    """``repeats`` searchable layers to ``cout`` channels; the first has ``stride``."""

    cout: int
    repeats: int
    stride: int


def build_space(
    name: str,
    *,
    input_hw: int,
    input_channels: int,
    prefix: Sequence[str],
    stages: Sequence[Stage],
    candidates: Sequence[str],
    suffix: Sequence[str],
    description: str = "",
    act: Activation = DEFAULT_ACTIVATION,
) -> SearchSpace:
    """Thread resolution and channels through ``stages`` of searchable layers.

    Every layer offers ``candidates``; the first layer of a stage changes shape and so
    cannot be skipped, every later one also offers ``skip``.
    """
    prefix_keys = tuple(parse(k) for k in prefix)
    hw, channels = (
        (prefix_keys[-1].hw_out, prefix_keys[-1].cout)
        if prefix_keys
        else (input_hw, input_channels)
    )
    parsed = tuple(Candidate.parse(c) for c in candidates)
    slots: list[LayerSlot] = []
    for stage in stages:
        for repeat in range(stage.repeats):
            first = repeat == 0
            stride = stage.stride if first else 1
            options = parsed if first else (*parsed, Candidate(Op.SKIP))
            slots.append(LayerSlot(hw, channels, stage.cout, stride, options, act))
            hw, channels = slots[-1].hw_out, stage.cout
    return SearchSpace(
        name=name,
        description=description,
        input_hw=input_hw,
        input_channels=input_channels,
        prefix=prefix_keys,
        layers=tuple(slots),
        suffix=tuple(parse(k) for k in suffix),
    )
