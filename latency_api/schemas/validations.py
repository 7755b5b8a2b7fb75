"""Validation reports: a predictor version against networks measured end to end, computed by
the service from its stored measurements."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from latency_api.schemas.common import MAX_ID, Int32
from latency_api.schemas.enums import DeviceMetric
from models import DEFAULT_SPACE
from predictor.metrics import ACCURACY, NOISE_FLOOR, Metric

_METRICS_EXAMPLE: dict[str, JsonValue] = {
    Metric.N: 200,
    Metric.WITHIN_5PCT: 0.96,
    Metric.WITHIN_10PCT: 1.0,
    Metric.MAPE: 2.1,
    Metric.RMSE_MS: 0.11,
    Metric.KENDALL_TAU: 0.93,
    Metric.BIAS_PCT: -0.4,
}


class ValidationIn(BaseModel):
    """Which predictor version to validate, on which stored networks."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"space": DEFAULT_SPACE},
                {
                    "predictor_version": 2,
                    "space": DEFAULT_SPACE,
                    "architectures": [[0, 1, 4, 2] * 5, [3] * 20],
                },
            ]
        },
    )

    space: str = Field(max_length=100)
    predictor_version: int | None = Field(
        default=None, ge=1, le=MAX_ID, description="Default: the device's newest version"
    )
    architectures: list[list[Int32]] | None = Field(
        default=None,
        max_length=100_000,
        description="Validate on these measured networks only (default: every measured network "
        "of the space that the predictor was not calibrated on)",
    )
    details: dict[str, JsonValue] = Field(
        default_factory=dict, description="Free-form context stored with the report"
    )


class ValidationPoint(BaseModel):
    architecture: list[int]
    measured_ms: float = Field(description="Median over the network's accepted measurements")
    predicted_ms: float
    n_measurements: int
    passes_ms: list[float] = Field(
        default_factory=list, description="Each accepted measurement's median, in order"
    )


class ValidationOut(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={"examples": [{"metrics": _METRICS_EXAMPLE}]},
    )

    id: int
    device_id: int
    predictor_id: int
    predictor_version: int
    space: str
    space_sha256: str | None = Field(
        default=None, description="The space's spec hash (None: stored before specs had one)"
    )
    n: int
    metrics: dict[str, Any] = Field(description=", ".join(ACCURACY))
    baselines: dict[str, dict[str, Any]] = Field(
        description="The same metrics for simpler predictors on the same networks"
    )
    details: dict[str, Any]
    noise_floor: dict[str, Any] | None = Field(
        default=None,
        description="The measurement against itself: each pass of a network against the "
        f"median of its other passes ({', '.join(NOISE_FLOOR)}); "
        "no predictor can be judged more finely than this",
    )
    points: list[ValidationPoint]
    created_at: datetime


class ValidationList(BaseModel):
    items: list[ValidationOut]


class MetricValidationIn(BaseModel):
    """Validate a predictor version's peak memory or energy on the device's measured networks."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"space": DEFAULT_SPACE, "metric": "memory"}]},
    )

    space: str = Field(max_length=100)
    metric: DeviceMetric
    predictor_version: int | None = Field(
        default=None, ge=1, le=MAX_ID, description="Default: the device's newest version"
    )
    architectures: list[list[Int32]] | None = Field(
        default=None,
        max_length=100_000,
        description="Validate on these measured networks only (default: every network measured "
        "for the metric that the version's calibration of it did not use)",
    )


class MetricPoint(BaseModel):
    architecture: list[int]
    measured: float = Field(description="Median of the network's values, in the report's unit")
    predicted: float
    n_measurements: int


class MetricValidationOut(BaseModel):
    """The same figures as a latency validation (``metrics``, ``baselines``, ``noise_floor``),
    for a metric beside latency; computed on request, not stored."""

    device_id: int
    predictor_version: int
    space: str
    metric: DeviceMetric
    unit: str = Field(description="Of measured, predicted and the RMSE: MB (2^20 B) or mJ")
    n: int
    metrics: dict[str, Any] = Field(
        description=", ".join(m if m != Metric.RMSE_MS else "rmse" for m in ACCURACY)
    )
    baselines: dict[str, dict[str, Any]] = Field(
        description="memory: parameters + the largest layer's activations; energy: "
        "proportional to MACs, fitted on the calibration networks"
    )
    noise_floor: dict[str, Any] | None = None
    points: list[MetricPoint]
