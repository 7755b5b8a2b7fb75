"""Plans: what a device should measure next (active sampling), and the jobs made for it."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from latency_api.schemas.jobs import JobTiming
from models import DEFAULT_SPACE

# How the layers were chosen: with the device's own layer model (its measurements, with other
# devices as a prior), with other devices' layers alone (a device with none of its own), or
# with no latency known anywhere (features and frequency only).
PlanBasis = Literal["device", "other_devices", "uninformed"]


class PlanIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"space": DEFAULT_SPACE, "layers": 10, "networks": 10}]},
    )

    space: str = Field(min_length=1, max_length=200)
    layers: int = Field(
        default=10, ge=0, le=1_000, description="Layer variants to measure in this round"
    )
    networks: int = Field(
        default=0,
        ge=0,
        le=500,
        description="Networks to measure end to end for the calibration, spread over the "
        "predicted latency range",
    )
    sample: int = Field(
        default=200,
        ge=10,
        le=5_000,
        description="Random architectures of the space whose predicted error the choice reduces",
    )
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    create_jobs: bool = Field(default=True, description="False: only say what would be chosen")
    timing: JobTiming = Field(default_factory=JobTiming)


class PlannedLayer(BaseModel):
    layer_key: str
    gain: float = Field(description="Reduction of the summed relative network variance")
    networks_holding: int = Field(description="Sampled architectures that hold this layer")


class PlanOut(BaseModel):
    device_id: int
    space: str
    basis: PlanBasis
    measured_layers: int = Field(description="Layer variants the device had measured")
    measured_networks: int = Field(description="Networks of the space it had measured")
    expected_mape_pct: float | None = Field(
        description="The layer model's own estimate of its error on the sampled networks' layer "
        "sums before this plan's measurements (None without a model)"
    )
    estimated_layer_share_pct: float = Field(
        description="Share of the sampled networks' layers not measured on the device"
    )
    layers: list[PlannedLayer]
    architectures: list[list[int]]
    job_ids: list[int]
