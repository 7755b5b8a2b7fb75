"""Predictor versions, predict requests and runtime tables."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from latency_api.errors import HwlatError
from latency_api.schemas.common import Id, Int32
from latency_api.schemas.enums import DeviceMetric
from models import DEFAULT_SPACE, SearchSpace
from models.errors import UserInputError
from predictor.calibration import calibrated_ms, calibrated_offset_ms

# Largest predict request: architectures (or networks given as layer lists) per request, and
# layer keys over all networks of a `layers` request. Larger ones are answered 413.
MAX_ARCHITECTURES = 100_000
MAX_LAYER_KEYS = 2_000_000

TableFormat = Literal["json", "spnas", "ofa"]


class FitIn(BaseModel):
    """Optional body of a fit: networks to leave out of the calibration."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"holdout": {DEFAULT_SPACE: [[0, 1, 4, 2] * 5]}}]},
    )

    holdout: dict[str, list[list[Int32]]] = Field(
        default_factory=dict,
        description="Per space, measured architectures the calibration must not see (kept "
        "for validating the fit)",
    )


class PredictorOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    device_id: int
    version: int
    origin: str = Field(description="'fit' or 'import'")
    training_sha256: str
    library_versions: dict[str, Any]
    metrics: dict[str, Any]
    created_at: datetime


class PredictorList(BaseModel):
    items: list[PredictorOut]


class PredictorArtifactOut(PredictorOut):
    """A predictor version with its artifact: everything needed to predict without the
    service (``predictor.PredictorArtifact.from_dict(artifact)``)."""

    artifact: dict[str, Any]


class OfaConfig(BaseModel):
    """A subnet in Once-for-All's encoding (``set_active_subnet(ks, e, d)`` and resolution
    ``r``): a kernel and an expansion per layer slot, the ones past a stage's depth included,
    and a depth per stage."""

    model_config = ConfigDict(extra="forbid")

    ks: list[Int32]
    e: list[Int32]
    d: list[Int32]
    r: Int32 | list[Int32] | None = Field(
        default=None, description="Resolution; the space's largest when left out"
    )


class PredictIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "device_id": 1,
                    "space": DEFAULT_SPACE,
                    "architectures": [[0, 1, 4, 2] * 5, [3] * 20],
                },
                {
                    "device_id": 1,
                    "layers": [["conv_hw224_i3_o32_k3_s2", "mbconv_hw112_i32_o16_k3_e1_s1"]],
                    "breakdown": True,
                },
            ]
        },
    )

    device_id: Id
    space: str | None = Field(default=None, description="Needed with `architectures`")
    # Plain ints: 200,000 of them per large request, each checked once by the service in NumPy
    # (range per position) rather than twice per element here.
    architectures: list[list[int]] | None = Field(
        default=None, description="One candidate index per searchable layer, per architecture"
    )
    ofa_configs: list[OfaConfig] | None = Field(
        default=None,
        description="Or: architectures of an OFA-style space (with `space`) in Once-for-All's "
        "own encoding",
    )
    layers: list[list[str]] | None = Field(
        default=None, description="Or: each network as its list of layer keys"
    )
    breakdown: bool = Field(default=False, description="Also return per-layer latencies")
    metrics: list[DeviceMetric] = Field(
        default_factory=list,
        description="Also predict these beside latency (memory: peak MB, 2^20 bytes; energy: "
        "mJ per inference), with `architectures` or `ofa_configs`",
    )

    @model_validator(mode="after")
    def _one_form(self) -> Self:
        given = [self.architectures, self.ofa_configs, self.layers]
        if sum(form is not None for form in given) != 1:
            raise ValueError(
                "give exactly one of `architectures` or `ofa_configs` (with `space`), or `layers`"
            )
        if self.layers is None and self.space is None:
            raise ValueError("`architectures` and `ofa_configs` index a search space: add `space`")
        if self.metrics and self.layers is not None:
            raise ValueError(
                "`metrics` are predicted for architectures of a space (a calibration per space); "
                "give `architectures` or `ofa_configs` with `space`"
            )
        return self


class EstimatedLayer(BaseModel):
    """A layer whose latency came from the layer model, not from a measurement."""

    layer_key: str
    position: int | None = None
    candidate: int | None = None
    ms: float


class PredictOut(BaseModel):
    device_id: int
    predictor_version: int
    space: str | None
    latency_ms: list[float]
    uncertainty_ms: list[float] = Field(description="One standard deviation, in ms")
    estimated_layers: list[EstimatedLayer] = Field(
        description="Layers of this batch estimated by the layer model (never a silent zero)"
    )
    estimated_count: list[int] | None = Field(
        default=None,
        description="Per architecture: how many of its layers the layer model estimated (0: "
        "every layer was measured)",
    )
    breakdown_ms: list[list[float]] | None = Field(
        default=None,
        description="Per layer that varies between the space's architectures (its searchable "
        "layers, in a space of fixed shapes), or per listed layer, with `breakdown`",
    )
    fixed_ms: float | None = Field(default=None, description="Fixed parts, in the sum before a·Σ+b")
    peak_memory_mb: list[float] | None = Field(
        default=None, description="With `metrics` memory: peak memory per architecture, MB (2^20 B)"
    )
    energy_mj: list[float] | None = Field(
        default=None, description="With `metrics` energy: energy per inference, millijoules"
    )


class TableMismatch(HwlatError):
    """A runtime table that does not describe the search space the client knows (the client
    and the service disagree on a space), or holds values no search can use."""


class TargetOutOfRange(UserInputError):
    """A latency target no architecture of the space can meet (or one every one beats)."""


class TableCandidate(BaseModel):
    index: int
    candidate: str = Field(
        description="Label: k3e6, k5e3se, skip, ...; in an elastic space the choices of the "
        "layer's parents joined by '/', e.g. 160/24/3/k5e4"
    )
    layer_key: str
    ms: float
    estimated: bool = Field(description="From the layer model, not measured")


class TableLayer(BaseModel):
    position: int
    name: str | None = Field(default=None, description="The layer in the spec: stage1.layer2")
    parents: list[int] | None = Field(
        default=None,
        description="Elastic spaces: the decisions (architecture entries) this layer's key "
        "depends on; candidate i is their choices in row-major order (the last varies "
        "fastest). None: the layer's own decision, entry `position` (a space of fixed shapes)",
    )
    candidates: list[TableCandidate]

    def index(self, architecture: Sequence[int], counts: Sequence[int]) -> int:
        """Which candidate this layer has in ``architecture`` (``counts``: choices per
        decision)."""
        if self.parents is None:
            return architecture[self.position]
        index = 0
        for parent in self.parents:
            index = index * counts[parent] + architecture[parent]
        return index


class TableCalibration(BaseModel):
    a: float
    b: float
    fixed_in_sum: bool = Field(
        description="True: latency = a·(Σ layers + fixed_ms) + b; false: a·Σ layers + b, with "
        "the fixed parts inside b"
    )


class RuntimeTable(BaseModel):
    """``GET /v1/devices/{id}/runtime-table?format=json``: searchable layer x candidate.

    The one runtime-table type: the service answers with it, the client parses it, and the
    search reads it through the plain-Python methods below (no NumPy, so the client stays
    light).
    """

    space: str
    predictor_version: int
    layers: list[TableLayer]
    fixed_ms: float | None
    calibration: TableCalibration
    decision_counts: list[int] | None = Field(
        default=None, description="Elastic spaces: how many choices each decision has"
    )

    def ms(self, position: int, index: int) -> float:
        return self.layers[position].candidates[index].ms

    @property
    def offset_ms(self) -> float:
        """What the calibration adds to ``a * sum``: ``a * fixed_ms + b`` or ``b``."""
        return calibrated_offset_ms(self.calibration, self.fixed_ms)

    def latency_ms(self, architecture: Sequence[int]) -> float:
        """The latency this table predicts for one architecture (what /v1/predict answers)."""
        counts = self.decision_counts or []
        total = sum(layer.candidates[layer.index(architecture, counts)].ms for layer in self.layers)
        return calibrated_ms(self.calibration, total, self.fixed_ms)

    def range_ms(self) -> tuple[float, float]:
        """The fastest and slowest predicted latency over the whole space (the sum is additive;
        in an elastic space, whose layers share decisions, these are bounds)."""
        low = sum(min(c.ms for c in layer.candidates) for layer in self.layers)
        high = sum(max(c.ms for c in layer.candidates) for layer in self.layers)
        return (
            calibrated_ms(self.calibration, low, self.fixed_ms),
            calibrated_ms(self.calibration, high, self.fixed_ms),
        )

    def require_reachable(self, target_ms: float) -> tuple[float, float]:
        """Raise unless some architecture's predicted latency is ``target_ms``; the range."""
        low, high = self.range_ms()
        if not (math.isfinite(target_ms) and low <= target_ms <= high):
            raise TargetOutOfRange(
                f"target {target_ms:g} ms is outside what {self.space} can reach on this "
                f"device: {low:.3f} ms (every layer fastest) to {high:.3f} ms (every layer "
                "slowest); pick a --target-ms in that range"
            )
        return low, high

    def _check_elastic(self, space: SearchSpace) -> None:
        varying = [p for p in space.positions if p.parents]
        got = [
            (layer.name, layer.parents, [c.layer_key for c in layer.candidates])
            for layer in self.layers
        ]
        want = [(p.name, list(p.parents), [str(k) for k in p.keys]) for p in varying]
        if self.space != space.name or got != want:
            raise TableMismatch(
                f"runtime table of {self.space} does not list {space.name}'s layers as this "
                "client decodes the space: the client and the service disagree on its spec"
            )
        for layer in self.layers:
            for entry in layer.candidates:
                if not math.isfinite(entry.ms) or entry.ms < 0:
                    raise TableMismatch(
                        f"runtime table of {self.space}, {layer.name}, {entry.candidate}: "
                        f"{entry.ms} is not a latency in ms; refit the device's predictor"
                    )

    def check_space(self, space: SearchSpace) -> None:
        """Raise unless the table has exactly the space's layers and candidates, in order, and
        values a search can use (checked here, by the reader, so that the service still
        serves a table other readers may accept)."""
        if not space.fixed_shape:
            self._check_elastic(space)
            return
        if self.space != space.name or len(self.layers) != space.num_layers:
            raise TableMismatch(
                f"runtime table is for {self.space} with {len(self.layers)} layers, not "
                f"{space.name} with {space.num_layers}; ask for space={space.name}"
            )
        for position, (layer, slot) in enumerate(zip(self.layers, space.layers, strict=True)):
            got = [(c.index, c.candidate) for c in layer.candidates]
            want = [(i, c.label) for i, c in enumerate(slot.candidates)]
            if got != want:
                raise TableMismatch(
                    f"runtime table layer {position} lists {got}, the space {space.name} "
                    f"{want}: this client and the service disagree on the space definition"
                )
            for entry in layer.candidates:
                if not math.isfinite(entry.ms) or entry.ms < 0:
                    raise TableMismatch(
                        f"runtime table of {self.space}, layer {position}, {entry.candidate}: "
                        f"{entry.ms} is not a latency in ms; refit the device's predictor"
                    )
        cal = self.calibration
        if cal.fixed_in_sum and self.fixed_ms is None:
            raise TableMismatch("runtime table puts the fixed parts in the sum but gives none")
        if not (math.isfinite(cal.a) and cal.a > 0 and math.isfinite(cal.b)):
            raise TableMismatch(f"runtime table calibration a={cal.a}, b={cal.b} is unusable")
