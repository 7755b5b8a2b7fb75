from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue

_METRICS_EXAMPLE: dict[str, JsonValue] = {
    "n": 200,
    "within_5pct": 0.96,
    "within_10pct": 1.0,
    "mape": 2.1,
    "rmse_ms": 0.11,
    "kendall_tau": 0.93,
}


class ValidationPoint(BaseModel):
    """One validated network: what was measured end to end and what the version predicted."""

    model_config = ConfigDict(extra="forbid")

    architecture: list[int]
    measured_ms: float = Field(gt=0, allow_inf_nan=False)
    predicted_ms: float = Field(gt=0, allow_inf_nan=False)


class ValidationIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "predictor_version": 1,
                    "space": "spnas-mobilenetv2-224",
                    "metrics": _METRICS_EXAMPLE,
                    "baselines": {"table_sum": {**_METRICS_EXAMPLE, "within_5pct": 0.2}},
                }
            ]
        },
    )

    predictor_version: int = Field(ge=1)
    space: str = Field(max_length=100)
    metrics: dict[str, Any]
    baselines: dict[str, dict[str, Any]] = Field(default_factory=dict)
    details: dict[str, Any] = Field(default_factory=dict)
    points: list[ValidationPoint] | None = Field(
        default=None, max_length=100_000, description="Per validated network, for the charts"
    )


class ValidationOut(ValidationIn):
    model_config = ConfigDict(from_attributes=True, extra="ignore")

    id: int
    device_id: int
    n: int
    created_at: datetime


class ValidationList(BaseModel):
    items: list[ValidationOut]
