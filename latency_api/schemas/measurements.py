"""Layer and network measurements: ingest batches, stored rows, current values."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    field_validator,
    model_validator,
)

from latency_api.schemas.common import MAX_ID, Id, Int32
from latency_api.schemas.jobs import JobRef
from latency_api.schemas.spaces import space_by_name
from models import DEFAULT_SPACE, parse, parse_architecture

PositiveMs = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegativeMs = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Celsius = Annotated[float, Field(ge=-50, le=200, allow_inf_nan=False)]
ExportFormat = Literal["csv", "json"]
# How long a metric's method may be (the store's column): what an agent records, cut to fit.
METHOD_CHARS = 200


class Statistics(BaseModel):
    model_config = ConfigDict(extra="forbid")

    count: int = Field(ge=1, le=MAX_ID, description="Number of timed runs")
    median_ms: PositiveMs
    mean_ms: PositiveMs
    std_ms: NonNegativeMs
    min_ms: PositiveMs
    max_ms: PositiveMs
    p90_ms: PositiveMs | None = None
    median_is_average: bool = Field(
        default=False,
        description="The tool printed no median (older benchmark_model builds), so median_ms "
        "holds the average of the runs",
    )
    samples_ms: list[PositiveMs] | None = Field(default=None, max_length=100_000)
    temp_before_c: Celsius | None = None
    temp_after_c: Celsius | None = None
    frequencies_khz: dict[str, int] | None = None
    agent_version: str = Field(default="", max_length=64)
    tool_version: str = Field(default="", max_length=64)
    # With a zone: a naive time would be read in whatever zone the database is in.
    measured_at: AwareDatetime | None = None
    accepted: bool = Field(
        default=True,
        description="The agent's quality gate accepted this window; rejected attempts are "
        "stored as evidence but no fit or validation uses them",
    )
    rejection: str | None = Field(
        default=None, max_length=500, description="Why the gate rejected it"
    )
    quality: dict[str, float] | None = Field(
        default=None,
        description="The window's evidence: probe_ratio (speed probe against its baseline), "
        "tail_ratio (median over the 10th percentile), other_cpu, steal",
    )
    attempt: int = Field(default=1, ge=1, le=1000, description="1 for the first try of a model")
    pass_index: int | None = Field(
        default=None, ge=0, le=10_000, description="The interleaved pass it was measured in"
    )
    # Metrics beside latency, measured in their own pass (a poll for memory or a power window
    # would disturb the timed runs); on one row of the model's, not on every repeat.
    peak_memory_bytes: int | None = Field(
        default=None, ge=0, le=2**50, description="Peak memory of one inference, bytes"
    )
    memory_method: str | None = Field(
        default=None, max_length=METHOD_CHARS, description="How peak_memory_bytes was measured"
    )
    energy_mj: float | None = Field(
        default=None,
        ge=0,
        allow_inf_nan=False,
        description="Energy per inference above idle, millijoules",
    )
    energy_method: str | None = Field(
        default=None,
        max_length=METHOD_CHARS,
        description="How energy_mj was measured, or why it could not be (then energy_mj is null)",
    )
    energy_detail: dict[str, JsonValue] | None = Field(
        default=None,
        description="The energy window's evidence: rails or gauge read, window and idle power, "
        "inferences, whether the phone was charging",
    )

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.accepted != (self.rejection is None):
            raise ValueError("a rejected measurement needs its `rejection`; an accepted one none")
        if not self.min_ms <= self.median_ms <= self.max_ms:
            raise ValueError(
                f"min_ms <= median_ms <= max_ms is broken ({self.min_ms} <= {self.median_ms} "
                f"<= {self.max_ms})"
            )
        if not self.min_ms <= self.mean_ms <= self.max_ms:
            raise ValueError(f"mean_ms {self.mean_ms} lies outside [min_ms, max_ms]")
        if self.p90_ms is not None and not self.median_ms <= self.p90_ms <= self.max_ms:
            raise ValueError(f"p90_ms {self.p90_ms} lies outside [median_ms, max_ms]")
        return self


# The documented example of a layer measurement (OpenAPI shows it; tests check it is valid).
LAYER_EXAMPLE: dict[str, JsonValue] = {
    "layer_key": "mbconv_hw56_i24_o40_k5_e6_s2",
    "count": 50,
    "median_ms": 1.234,
    "mean_ms": 1.251,
    "std_ms": 0.031,
    "min_ms": 1.2,
    "max_ms": 1.41,
    "p90_ms": 1.29,
    "temp_before_c": 36.5,
    "temp_after_c": 37.1,
    "agent_version": "0.1.0",
    "tool_version": "ai-edge-litert 2.3.0",
}


LayerRole = Literal["layer", "reference"]


class LayerMeasurementIn(Statistics):
    model_config = ConfigDict(json_schema_extra={"examples": [LAYER_EXAMPLE]})

    layer_key: str = Field(max_length=200)
    role: LayerRole = Field(
        default="layer",
        description="'reference': the drift reference an agent times at the start and end of "
        "every job; kept apart from the layer's own values",
    )

    @field_validator("layer_key")
    @classmethod
    def _canonical_key(cls, value: str) -> str:
        return _canonical(value)


@lru_cache(maxsize=8192)
def _canonical(key: str) -> str:
    # A batch repeats the few dozen keys of a space many times; each is parsed once.
    return str(parse(key))


class NetworkMeasurementIn(Statistics):
    space: str = Field(max_length=100, examples=[DEFAULT_SPACE])
    architecture: list[Int32] = Field(max_length=1000, examples=[[0, 1, 4, 2] * 5])

    @model_validator(mode="after")
    def _fits_space(self) -> Self:
        space = space_by_name(self.space)
        if space is not None:  # None: a registered space this client has not fetched
            space.validate(self.architecture)
        return self


class LayerBatchIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"device_id": 1, "measurements": [LAYER_EXAMPLE]}]},
    )

    device_id: Id
    measurements: list[LayerMeasurementIn] = Field(min_length=1)
    job: JobRef | None = Field(
        default=None, description="The leased job this upload belongs to; checked atomically"
    )


class NetworkBatchIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "device_id": 1,
                    "measurements": [
                        {
                            **{k: v for k, v in LAYER_EXAMPLE.items() if k != "layer_key"},
                            "median_ms": 4.31,
                            "mean_ms": 4.35,
                            "min_ms": 4.2,
                            "max_ms": 4.9,
                            "p90_ms": 4.5,
                            "std_ms": 0.08,
                            "space": DEFAULT_SPACE,
                            "architecture": [0, 1, 4, 2] * 5,
                        }
                    ],
                }
            ]
        },
    )

    device_id: Id
    measurements: list[NetworkMeasurementIn] = Field(min_length=1)
    job: JobRef | None = None


class IngestOut(BaseModel):
    stored: int
    ids: list[int]
    idempotency_key: str | None = None


class _StoredStatistics(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    device_id: int
    count: int
    median_ms: float
    mean_ms: float
    std_ms: float
    min_ms: float
    max_ms: float
    p90_ms: float | None
    median_is_average: bool
    samples_ms: list[float] | None
    temp_before_c: float | None
    temp_after_c: float | None
    frequencies_khz: dict[str, Any] | None
    agent_version: str
    tool_version: str
    measured_at: datetime
    created_at: datetime
    accepted: bool
    rejection: str | None
    quality: dict[str, float] | None
    attempt: int
    pass_index: int | None
    job_id: int | None
    peak_memory_bytes: int | None = None
    memory_method: str | None = None
    energy_mj: float | None = None
    energy_method: str | None = None
    energy_detail: dict[str, Any] | None = None


class LayerMeasurementOut(_StoredStatistics):
    layer_key: str
    role: LayerRole


class NetworkMeasurementOut(_StoredStatistics):
    space: str
    space_sha256: str | None = Field(
        default=None, description="The space's spec hash when measured"
    )
    architecture: list[int]

    @field_validator("architecture", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        # The table stores "0,1,4,..."; the wire carries a list.
        return parse_architecture(value) if isinstance(value, str) else value


class LayerCurrent(BaseModel):
    """The current value of a (device, layer): a robust aggregate over its history."""

    layer_key: str
    median_ms: float = Field(description="Median of the non-outlier measurements' medians")
    n: int = Field(description="Accepted measurements in the history")
    n_used: int = Field(description="Measurements that were not outliers")
    spread_pct: float = Field(description="Median absolute deviation, percent of median_ms")
    outlier_ids: list[int]
    averages_used: int = Field(
        default=0,
        description="How many of the used measurements are averages standing in for a median "
        "(median_is_average)",
    )
    last_measured_at: datetime


class ReferencePoint(BaseModel):
    job_id: int | None
    measured_at: datetime
    median_ms: float


class JobDrift(BaseModel):
    job_id: int
    start_ms: float
    end_ms: float
    change_pct: float = Field(description="End against start, percent")


class DriftOut(BaseModel):
    """How a device's reference model moved over time: drift the quality gate cannot see."""

    device_id: int
    reference_layer_key: str | None
    points: list[ReferencePoint]
    jobs: list[JobDrift]
    spread_pct: float | None = Field(
        description="Slowest over fastest job reference, minus one, percent"
    )
    drifting: bool = Field(description="spread_pct above threshold_pct")
    threshold_pct: float
