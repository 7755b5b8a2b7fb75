from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_ARCHITECTURES = 100_000


class PredictorOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    device_id: int
    version: int
    origin: str
    training_sha256: str
    library_versions: dict[str, Any]
    metrics: dict[str, Any]
    created_at: datetime


class PredictorList(BaseModel):
    items: list[PredictorOut]


class PredictIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "device_id": 1,
                    "space": "spnas-mobilenetv2-224",
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

    device_id: int
    space: str | None = Field(default=None, description="Needed with `architectures`")
    architectures: list[list[int]] | None = Field(
        default=None, description="One candidate index per searchable layer, per architecture"
    )
    layers: list[list[str]] | None = Field(
        default=None, description="Or: each network as its list of layer keys"
    )
    breakdown: bool = Field(default=False, description="Also return per-layer latencies")

    @model_validator(mode="after")
    def _one_form(self) -> Self:
        if (self.architectures is None) == (self.layers is None):
            raise ValueError("give exactly one of `architectures` (with `space`) or `layers`")
        if self.architectures is not None and self.space is None:
            raise ValueError("`architectures` index a search space: add `space`")
        return self


class EstimatedLayer(BaseModel):
    """A layer whose latency came from the regression, not from a measurement."""

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
        description="Layers of this batch predicted by the regression (never a silent zero)"
    )
    breakdown_ms: list[list[float]] | None = Field(
        default=None, description="Per searchable layer (or per listed layer), with `breakdown`"
    )
    fixed_ms: float | None = Field(default=None, description="Fixed parts, in the sum before a·Σ+b")


TableFormat = Literal["json", "spnas", "ofa"]
