"""Search spaces decoded from their spec: decisions, and the network each architecture is.

An *architecture* is one choice index per *decision*, in this order: the input resolution (when
the spec offers several), then stage by stage its width (several widths), its depth (several
depths) and each layer slot's candidate (several candidates, ``skip`` among them where the stage
offers it). A decision with one choice is no decision and takes no entry, so a space without
elastic resolution, widths or depths has one entry per searchable layer: the built-in spaces'
architectures are what they were before spaces were data.

Every layer of the network is a *position*. A position's layer key depends on a few decisions,
its *parents*: the resolution (its input size), the widths before and of its stage (its
channels), its stage's depth (whether it runs at all: a slot past the depth is a skip) and its
own candidate. ``Position.keys`` lists its key for every combination of its parents' choices,
so that a predictor can tabulate a whole space and predict any architecture with one gather.
"""

from __future__ import annotations

import itertools
import math
import numbers
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, Final

from models.errors import UserInputError
from models.layer_key import Activation, LayerKey, Op, parse
from models.space_spec import (
    KERNELS,
    MAX_CHANNELS,
    MAX_CHOICES,
    MAX_CLASSES,
    MAX_DEPTH,
    MAX_EXPANSION,
    MAX_RESOLUTION,
    MAX_STAGES,
    SPEC_VERSION,
    LayerSpec,
    SpaceSpec,
    SpecError,
    StageSpec,
    spec_from_dict,
)

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

_CANDIDATE_RE: Final = re.compile(r"^k(?P<k>[1-9]\d*)e(?P<e>[1-9]\d*)(?P<se>se)?$")
_NAME_RE: Final = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")
SKIP: Final = "skip"


class InvalidArchitecture(UserInputError):
    """An architecture that does not fit its search space; ``position`` is the bad entry."""

    def __init__(self, message: str, position: int | None = None) -> None:
        super().__init__(message)
        self.position = position


class ElasticSpace(UserInputError):
    """Asked of an elastic space what only a space of fixed layer shapes has."""


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
            return SKIP
        return f"k{self.kernel}e{self.expansion}" + ("se" if self.se else "")

    def __str__(self) -> str:
        return self.label

    @classmethod
    def parse(cls, label: str) -> Candidate:
        if label == SKIP:
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
    """A searchable layer of fixed shape: its input/output and its ordered candidates."""

    hw: int
    cin: int
    cout: int
    stride: int
    candidates: tuple[Candidate, ...]
    act: Activation = Activation.RELU6
    se_mid: bool = False

    @property
    def skippable(self) -> bool:
        return any(c.op is Op.SKIP for c in self.candidates)

    @property
    def hw_out(self) -> int:
        return -(-self.hw // self.stride)

    def key(self, index: int) -> LayerKey:
        return _mbconv_or_skip(
            self.candidates[index], self.hw, self.cin, self.cout, self.stride, self.act, self.se_mid
        )

    def candidate_keys(self) -> tuple[LayerKey, ...]:
        return tuple(self.key(i) for i in range(len(self.candidates)))


@dataclass(frozen=True, slots=True)
class Decision:
    """One entry of an architecture: its name and the labels of its choices."""

    name: str
    choices: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Position:
    """One layer of the network, as a function of the decisions it depends on.

    ``keys`` holds the layer's key for every combination of ``parents``' choices, in row-major
    order (the last parent varies fastest); a slot past its stage's depth is a skip key.
    ``searchable`` is False for the fixed parts (stem and head).
    """

    name: str
    parents: tuple[int, ...]
    keys: tuple[LayerKey, ...]
    searchable: bool


@dataclass(frozen=True)
class SearchSpace:
    spec: SpaceSpec

    def __post_init__(self) -> None:
        # Decoding checks the spec; a space that exists is one whose every network builds.
        _ = self._built

    # -- identity ---------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def description(self) -> str:
        return self.spec.description

    @cached_property
    def digest(self) -> str:
        """sha256 of the spec's canonical JSON: what stored data records of its space."""
        return self.spec.digest()

    def __hash__(self) -> int:
        return hash(self.digest)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SearchSpace) and other.digest == self.digest

    # -- decisions --------------------------------------------------------------------------

    @cached_property
    def _built(self) -> _Built:
        return _build(self.spec)

    @property
    def decisions(self) -> tuple[Decision, ...]:
        return self._built.decisions

    @property
    def positions(self) -> tuple[Position, ...]:
        return self._built.positions

    @property
    def num_layers(self) -> int:
        """Entries of an architecture: one per decision (a searchable layer, in a space of
        fixed shapes)."""
        return len(self.decisions)

    @property
    def candidate_counts(self) -> tuple[int, ...]:
        return tuple(len(d.choices) for d in self.decisions)

    @property
    def size(self) -> int:
        """Distinct architectures (as encoded: a slot past the depth still has an entry)."""
        return math.prod(self.candidate_counts)

    @property
    def architectures_log10(self) -> float:
        """log10 of :attr:`size` (a float: sizes reach 10^20 and more)."""
        return sum(math.log10(c) for c in self.candidate_counts)

    @property
    def input_channels(self) -> int:
        return self.spec.input.channels

    @property
    def resolutions(self) -> tuple[int, ...]:
        return self.spec.input.resolutions

    @property
    def input_hw(self) -> int:
        """The input resolution of a space that has one (the largest of an elastic one)."""
        return max(self.spec.input.resolutions)

    # -- spaces of fixed layer shapes (every built-in space) --------------------------------

    @property
    def fixed_shape(self) -> bool:
        """Every decision picks one layer's candidate; no layer's shape depends on another."""
        return self._built.slots is not None

    @property
    def layers(self) -> tuple[LayerSlot, ...]:
        return self._fixed().slots or ()

    @property
    def prefix(self) -> tuple[LayerKey, ...]:
        return self._fixed().prefix

    @property
    def suffix(self) -> tuple[LayerKey, ...]:
        return self._fixed().suffix

    def _fixed(self) -> _Built:
        if self._built.slots is None:
            raise ElasticSpace(
                f"{self.name} is no space of fixed layers, one decision per searchable layer "
                f"(it has elastic {', '.join(self._built.elastic)}); this needs one"
            )
        return self._built

    # -- architectures ----------------------------------------------------------------------

    def validate(self, arch: Sequence[int] | npt.ArrayLike) -> tuple[int, ...]:
        """Return the architecture as a tuple of ints, or raise naming the bad entry."""
        # NumPy arrays are accepted without importing NumPy here: the wire schemas validate
        # architectures with this method in clients that have only pydantic and httpx.
        values = arch if isinstance(arch, Sequence) else _flat_list(arch)
        if len(values) != self.num_layers:
            raise InvalidArchitecture(
                f"architecture has {len(values)} entries; {self.name} has {self.num_layers} "
                f"decisions ({self._decision_names()})"
            )
        out: list[int] = []
        for position, (value, decision) in enumerate(zip(values, self.decisions, strict=True)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise InvalidArchitecture(
                    f"position {position}: {value!r} is not an integer candidate index", position
                )
            index = int(value)
            if not 0 <= index < len(decision.choices):
                labels = ", ".join(f"{i}={c}" for i, c in enumerate(decision.choices))
                raise InvalidArchitecture(
                    f"position {position} ({decision.name}): candidate {index} out of range; "
                    f"choose one of {labels}",
                    position,
                )
            out.append(index)
        return tuple(out)

    def _decision_names(self) -> str:
        names = [d.name for d in self.decisions]
        return ", ".join(names) if len(names) <= 6 else f"{names[0]} ... {names[-1]}"

    def network(self, arch: Sequence[int] | npt.ArrayLike) -> tuple[LayerKey, ...]:
        """Every layer of the whole network in order, each with the input it really receives;
        a skipped layer (a skip candidate, or a slot past its stage's depth) as a skip key."""
        chosen = self.validate(arch)
        return tuple(_key_at(p, self.decisions, chosen) for p in self.positions)

    def decode(self, arch: Sequence[int] | npt.ArrayLike) -> tuple[LayerKey, ...]:
        """The searchable layers' keys of an architecture (skips included, as skip keys)."""
        chosen = self.validate(arch)
        return tuple(_key_at(p, self.decisions, chosen) for p in self.positions if p.searchable)

    def encode(self, keys: Iterable[LayerKey | str]) -> tuple[int, ...]:
        """Inverse of :meth:`decode` for a space of fixed layer shapes."""
        slots = self.layers
        parsed = [k if isinstance(k, LayerKey) else parse(k) for k in keys]
        if len(parsed) != len(slots):
            raise InvalidArchitecture(
                f"got {len(parsed)} layer keys; {self.name} has {len(slots)} searchable layers"
            )
        out = []
        for position, (key, slot) in enumerate(zip(parsed, slots, strict=True)):
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
        """``n`` architectures drawn uniformly and independently per decision, (n, D)."""
        import numpy as np

        if n < 0:
            raise UserInputError(f"cannot sample {n} architectures; n must be >= 0")
        rng = np.random.default_rng(seed)
        counts = np.asarray(self.candidate_counts, dtype=np.int64)
        return rng.integers(0, counts, size=(n, self.num_layers), dtype=np.int64)

    def variants(self, include_skip: bool = False) -> tuple[LayerKey, ...]:
        """Every distinct layer variant any architecture has, in network order.

        This is what an agent profiles. Skip is an identity with no cost of its own, so it is
        left out unless asked for.
        """
        keys: dict[LayerKey, None] = {}
        for position in self.positions:
            keys.update(
                dict.fromkeys(k for k in position.keys if include_skip or k.op is not Op.SKIP)
            )
        return tuple(keys)

    # -- serialisation ----------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return self.spec.to_dict()

    def to_json(self, indent: int | None = 2) -> str:
        import json

        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data: Any) -> SearchSpace:
        return cls(spec_from_dict(data))

    @classmethod
    def from_json(cls, text: str) -> SearchSpace:
        import json

        return cls.from_dict(json.loads(text))


def _flat_list(arch: Any) -> list[Any]:
    """The entries of an array-like (a NumPy array, say), flattened, as Python scalars."""
    reshape = getattr(arch, "reshape", None)
    if reshape is None:
        raise InvalidArchitecture(
            f"an architecture is a sequence of candidate indices, not {type(arch).__name__}"
        )
    values: list[Any] = reshape(-1).tolist()
    return values


def _key_at(position: Position, decisions: Sequence[Decision], chosen: Sequence[int]) -> LayerKey:
    index = 0
    for parent in position.parents:
        index = index * len(decisions[parent].choices) + chosen[parent]
    return position.keys[index]


# -- decoding a spec --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Built:
    decisions: tuple[Decision, ...]
    positions: tuple[Position, ...]
    elastic: tuple[str, ...]  # what makes shapes vary: "resolution", "widths", "depths"
    slots: tuple[LayerSlot, ...] | None  # a space of fixed shapes only
    prefix: tuple[LayerKey, ...]
    suffix: tuple[LayerKey, ...]


@dataclass(frozen=True)
class _Value:
    """A quantity of the network that is fixed or chosen by one decision."""

    choices: tuple[int, ...]
    decision: int | None  # None: fixed (one choice)

    def parents(self) -> tuple[int, ...]:
        return () if self.decision is None else (self.decision,)


def _build(spec: SpaceSpec) -> _Built:
    _check_spec(spec)
    decisions: list[Decision] = []

    def decide(name: str, labels: Sequence[str], values: Sequence[int]) -> _Value:
        if len(values) == 1:
            return _Value(tuple(values), None)
        decisions.append(Decision(name, tuple(labels)))
        return _Value(tuple(values), len(decisions) - 1)

    resolution = decide(
        "resolution", [str(r) for r in spec.input.resolutions], spec.input.resolutions
    )
    # The scale of each part relative to the input: hw at a point is the input's hw divided by
    # the product of the strides before it, rounding up ("same" padding) at every stride.
    strides: list[int] = []
    positions: list[Position] = []
    channels = spec.input.channels
    for n, layer in enumerate(spec.stem):
        positions.append(
            _fixed_position(f"stem{n}", layer, resolution, strides, _Value((channels,), None))
        )
        channels = layer.out or channels
        strides.append(layer.stride if layer.op in ("conv", "mbconv") else 1)
    width_in = _Value((channels,), None)
    slots: list[LayerSlot] = []
    for s, stage in enumerate(spec.stages):
        where = f"stage{s}"
        width = decide(f"{where}.width", [str(w) for w in stage.widths], stage.widths)
        depth = decide(f"{where}.depth", [str(d) for d in stage.depths], stage.depths)
        for slot in range(max(stage.depths)):
            candidates = [Candidate.parse(c) for c in stage.candidates]
            if stage.skip and slot > 0:
                candidates.append(Candidate(Op.SKIP))
            own = decide(
                f"{where}.layer{slot}",
                [c.label for c in candidates],
                list(range(len(candidates))),
            )
            optional = slot >= min(stage.depths)
            position, fixed_slot = _slot_position(
                f"{where}.layer{slot}",
                stage,
                slot,
                resolution,
                strides,
                width_in if slot == 0 else width,
                width,
                depth if optional else _Value((max(stage.depths),), None),
                own,
                candidates,
            )
            positions.append(position)
            if fixed_slot is not None:
                slots.append(fixed_slot)
            if slot == 0:
                strides.append(stage.stride)
        width_in = width
    head_start = len(positions)
    for n, layer in enumerate(spec.head):
        positions.append(_fixed_position(f"head{n}", layer, resolution, strides, width_in))
        if layer.op in ("conv", "mbconv"):
            strides.append(layer.stride)
            width_in = _Value((layer.out,), None)
        elif layer.op == "pool":
            strides.append(0)  # global: everything after sees 1x1
    elastic = tuple(
        name
        for name, value in (
            ("resolution", len(spec.input.resolutions) > 1),
            ("widths", any(len(st.widths) > 1 for st in spec.stages)),
            ("depths", any(len(st.depths) > 1 for st in spec.stages)),
            # A searchable layer with one choice is no decision: layers and decisions differ.
            ("single-choice layers", len(slots) != sum(p.searchable for p in positions)),
        )
        if value
    )
    fixed = not elastic
    stem_count = len(spec.stem)
    return _Built(
        decisions=tuple(decisions),
        positions=tuple(positions),
        elastic=elastic,
        slots=tuple(slots) if fixed else None,
        prefix=tuple(p.keys[0] for p in positions[:stem_count]) if fixed else (),
        suffix=tuple(p.keys[0] for p in positions[head_start:]) if fixed else (),
    )


def _hw(resolution: int, strides: Sequence[int]) -> int:
    hw = resolution
    for stride in strides:
        hw = 1 if stride == 0 else -(-hw // stride)
    return hw


def _fixed_position(
    name: str, layer: LayerSpec, resolution: _Value, strides: Sequence[int], cin: _Value
) -> Position:
    parents = resolution.parents() + cin.parents()
    keys = tuple(
        _layer_key(layer, _hw(r, strides), c)
        for r, c in itertools.product(resolution.choices, cin.choices)
    )
    return Position(name, parents, keys, searchable=False)


def _layer_key(layer: LayerSpec, hw: int, cin: int) -> LayerKey:
    act = Activation(layer.act)
    if layer.op == "conv":
        return LayerKey(
            Op.CONV, hw, cin, layer.out, kernel=layer.kernel, stride=layer.stride, act=act
        )
    if layer.op == "mbconv":
        return LayerKey(
            Op.MBCONV,
            hw,
            cin,
            layer.out,
            kernel=layer.kernel,
            expansion=layer.expansion,
            stride=layer.stride,
            se=layer.se,
            se_mid=layer.se and layer.se_width == "mid",
            act=act,
        )
    if layer.op == "pool":
        return LayerKey(Op.POOL, hw, cin, cin)
    return LayerKey(Op.LOGITS, hw, cin, layer.classes, classes=layer.classes)


def _slot_position(
    name: str,
    stage: StageSpec,
    slot: int,
    resolution: _Value,
    strides: Sequence[int],
    cin: _Value,
    cout: _Value,
    depth: _Value,
    own: _Value,
    candidates: Sequence[Candidate],
) -> tuple[Position, LayerSlot | None]:
    stride = stage.stride if slot == 0 else 1
    act = Activation(stage.act)
    se_mid = stage.se == "mid"
    parents: list[int] = []
    axes: list[tuple[int, ...]] = []
    # Order of the key grid: resolution, input width, width, depth, candidate.
    for value in (resolution, cin, cout, depth, own):
        if value.decision is not None and value.decision not in parents:
            parents.append(value.decision)
            axes.append(value.choices)
    keys = []
    for combination in itertools.product(*axes):
        chosen = dict(zip(parents, combination, strict=True))

        def pick(value: _Value, chosen: dict[int, int] = chosen) -> int:
            return value.choices[0] if value.decision is None else chosen[value.decision]

        hw = _hw(pick(resolution), strides)
        c_in, c_out = pick(cin), pick(cout)
        if slot >= pick(depth):
            # Past the stage's depth the slot does not run: an identity of the stage's width.
            keys.append(LayerKey(Op.SKIP, hw, c_out, c_out))
            continue
        keys.append(_mbconv_or_skip(candidates[pick(own)], hw, c_in, c_out, stride, act, se_mid))
    fixed = None
    if own.decision is not None and parents == [own.decision]:
        fixed = LayerSlot(
            _hw(resolution.choices[0], strides),
            cin.choices[0],
            cout.choices[0],
            stride,
            tuple(candidates),
            act,
            se_mid,
        )
    return Position(name, tuple(parents), tuple(keys), searchable=True), fixed


def _mbconv_or_skip(
    candidate: Candidate,
    hw: int,
    cin: int,
    cout: int,
    stride: int,
    act: Activation,
    se_mid: bool,
) -> LayerKey:
    if candidate.op is Op.SKIP:
        return LayerKey(Op.SKIP, hw, cin, cout)
    return LayerKey(
        Op.MBCONV,
        hw,
        cin,
        cout,
        kernel=candidate.kernel,
        expansion=candidate.expansion,
        stride=stride,
        se=candidate.se,
        se_mid=candidate.se and se_mid,
        act=act,
    )


# -- checking a spec ---------------------------------------------------------------------------


def _check_spec(spec: SpaceSpec) -> None:
    if spec.schema_version != SPEC_VERSION:
        raise SpecError(
            "schema_version",
            f"{spec.schema_version} is not supported (this hwlat reads {SPEC_VERSION})",
        )
    if not _NAME_RE.match(spec.name):
        raise SpecError(
            "name",
            f"{spec.name!r}: use 1-100 lower-case letters, digits, '.', '_' or '-', starting "
            "with a letter or digit",
        )
    _choices("input.resolutions", spec.input.resolutions, 8, MAX_RESOLUTION)
    _bounded("input.channels", spec.input.channels, 1, MAX_CHANNELS)
    if not spec.stages:
        raise SpecError("stages", "empty: a space needs at least one searchable stage")
    if len(spec.stages) > MAX_STAGES:
        raise SpecError("stages", f"{len(spec.stages)} stages; at most {MAX_STAGES}")
    classifier_at: str | None = None
    global_pool_at: str | None = None
    for part, layers in (("stem", spec.stem), ("head", spec.head)):
        for n, layer in enumerate(layers):
            where = f"{part}.{n}"
            if classifier_at is not None:
                raise SpecError(
                    where, f"follows the classifier at {classifier_at}; nothing can follow logits"
                )
            _check_layer(where, layer)
            if (
                global_pool_at is not None
                and layer.op in ("conv", "mbconv")
                and (layer.kernel > 1 or layer.stride > 1)
            ):
                raise SpecError(
                    where,
                    f"a {layer.kernel}x{layer.kernel} {layer.op} after the global pool at "
                    f"{global_pool_at} sees a 1x1 input; after pooling only 1x1 convs and "
                    "logits make sense",
                )
            if layer.op == "logits":
                classifier_at = where
            if layer.op == "pool":
                global_pool_at = where
        if part == "stem" and (classifier_at or global_pool_at):
            raise SpecError(
                f"stem.{len(layers) - 1}",
                "the stem cannot pool or classify: the stages after it need a feature map",
            )
    for s, stage in enumerate(spec.stages):
        where = f"stages.{s}"
        _choices(f"{where}.widths", stage.widths, 1, MAX_CHANNELS)
        _choices(f"{where}.depths", stage.depths, 1, MAX_DEPTH)
        if stage.stride not in (1, 2):
            raise SpecError(f"{where}.stride", f"{stage.stride}: a stage's stride is 1 or 2")
        if not stage.candidates:
            raise SpecError(f"{where}.candidates", "empty: each layer needs at least one choice")
        if len(stage.candidates) > MAX_CHOICES:
            raise SpecError(f"{where}.candidates", f"more than {MAX_CHOICES} choices")
        if len(set(stage.candidates)) != len(stage.candidates):
            raise SpecError(f"{where}.candidates", "lists a candidate twice")
        for c, label in enumerate(stage.candidates):
            here = f"{where}.candidates.{c}"
            if label == SKIP:
                raise SpecError(
                    here,
                    "skip: a stage's first layer changes its input's shape (channels or "
                    "resolution) and cannot be skipped; set `skip: true` to offer skip on the "
                    "stage's other layers",
                )
            try:
                candidate = Candidate.parse(label)
            except UserInputError as error:
                raise SpecError(here, str(error)) from None
            if candidate.kernel not in KERNELS:
                raise SpecError(here, f"kernel {candidate.kernel}: exporters build {KERNELS}")
            if not 1 <= candidate.expansion <= MAX_EXPANSION:
                raise SpecError(here, f"expansion {candidate.expansion}: 1 to {MAX_EXPANSION}")


def _check_layer(where: str, layer: LayerSpec) -> None:
    if layer.op in ("conv", "mbconv"):
        _bounded(f"{where}.out", layer.out, 1, MAX_CHANNELS)
        if layer.kernel not in KERNELS:
            raise SpecError(f"{where}.kernel", f"{layer.kernel}: exporters build {KERNELS}")
        if layer.stride not in (1, 2):
            raise SpecError(f"{where}.stride", f"{layer.stride}: 1 or 2")
    if layer.op == "mbconv":
        _bounded(f"{where}.expansion", layer.expansion, 1, MAX_EXPANSION)
    elif layer.se:
        raise SpecError(f"{where}.se", f"only an mbconv has squeeze-and-excitation, not {layer.op}")
    if layer.op == "conv" and layer.expansion != 1:
        raise SpecError(f"{where}.expansion", "a conv has no expansion; use an mbconv")
    if layer.op in ("pool", "logits"):
        if layer.out or layer.kernel != 1 or layer.stride != 1:
            raise SpecError(where, f"{layer.op} takes no out, kernel or stride")
        if layer.act != "relu6":
            raise SpecError(f"{where}.act", f"{layer.op} has no activation")
    if layer.op == "logits":
        _bounded(f"{where}.classes", layer.classes, 1, MAX_CLASSES)
    elif layer.classes:
        raise SpecError(f"{where}.classes", f"only logits has classes, not {layer.op}")


def _choices(where: str, values: Sequence[int], low: int, high: int) -> None:
    if not values:
        raise SpecError(where, "empty: give at least one choice")
    if len(values) > MAX_CHOICES:
        raise SpecError(where, f"{len(values)} choices; at most {MAX_CHOICES}")
    if len(set(values)) != len(values):
        raise SpecError(where, "lists a value twice")
    for n, value in enumerate(values):
        _bounded(f"{where}.{n}", value, low, high)


def _bounded(where: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise SpecError(where, f"{value} is outside {low}..{high}, what the exporters support")
