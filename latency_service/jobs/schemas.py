from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from latency_service.spaces import space_for_validator
from models import parse


class JobKind(StrEnum):
    profile_layers = "profile_layers"
    profile_networks = "profile_networks"


class JobStatus(StrEnum):
    queued = "queued"
    leased = "leased"
    done = "done"
    failed = "failed"


SELECTOR_FIELDS = frozenset(
    {
        "kind",
        "model",
        "soc",
        "abi",
        "os_version",
        "runtime",
        "runtime_version",
        "delegate",
        "threads",
        "precision",
        "name",
    }
)


class RunSettingsIn(BaseModel):
    """How to time each model (benchmark_model's flags where they overlap)."""

    model_config = ConfigDict(extra="forbid")

    warmup_runs: int = Field(default=10, ge=0, le=10_000)
    num_runs: int = Field(default=50, ge=1, le=100_000)
    min_secs: float = Field(default=0.0, ge=0, le=3600)
    cooldown_secs: float = Field(default=0.0, ge=0, le=600)
    repeats: int = Field(default=1, ge=1, le=100, description="Interleaved passes over the list")


class JobIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "kind": "profile_layers",
                    "device_id": 1,
                    "payload": {"layer_keys": ["mbconv_hw56_i24_o40_k5_e6_s2"]},
                    "settings": {"warmup_runs": 10, "num_runs": 50},
                },
                {
                    "kind": "profile_networks",
                    "selector": {"kind": "android", "model": "Pixel 7"},
                    "payload": {"space": "spnas-mobilenetv2-224", "architectures": [[0] * 20]},
                },
            ]
        },
    )

    kind: JobKind
    device_id: int | None = None
    selector: dict[str, str | int] = Field(default_factory=dict)
    payload: dict[str, Any]
    settings: RunSettingsIn = Field(default_factory=RunSettingsIn)
    max_attempts: int = Field(default=3, ge=1, le=20)

    @model_validator(mode="after")
    def _check(self) -> Self:
        if (self.device_id is None) == (not self.selector):
            raise ValueError("give exactly one of device_id or a non-empty selector")
        unknown = set(self.selector) - SELECTOR_FIELDS
        if unknown:
            raise ValueError(
                f"selector fields {sorted(unknown)} are unknown; use {sorted(SELECTOR_FIELDS)}"
            )
        if self.kind is JobKind.profile_layers:
            keys = self.payload.get("layer_keys")
            if not isinstance(keys, list) or not keys:
                raise ValueError("profile_layers needs payload.layer_keys, a non-empty list")
            self.payload = {"layer_keys": [str(parse(k)) for k in keys]}
        else:
            space = space_for_validator(str(self.payload.get("space")))
            archs = self.payload.get("architectures")
            if not isinstance(archs, list) or not archs:
                raise ValueError("profile_networks needs payload.architectures, a non-empty list")
            self.payload = {
                "space": space.name,
                "architectures": [list(space.validate(a)) for a in archs],
            }
        return self


class ClaimIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"device_id": 1, "agent": "host:lab-1", "lease_seconds": 300}]
        },
    )

    device_id: int
    agent: str = Field(min_length=1, max_length=200)
    lease_seconds: float = Field(default=300, gt=0, le=86_400)


class LeaseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lease_token: str = Field(min_length=1, max_length=64)
    lease_seconds: float = Field(default=300, gt=0, le=86_400)


class CompleteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lease_token: str = Field(min_length=1, max_length=64)
    result: dict[str, Any] = Field(default_factory=dict)


class FailIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lease_token: str = Field(min_length=1, max_length=64)
    reason: str = Field(min_length=1, max_length=10_000)
    retry: bool = True


class JobOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: JobKind
    device_id: int | None
    selector: dict[str, Any]
    payload: dict[str, Any]
    settings: dict[str, Any]
    status: JobStatus
    attempts: int
    max_attempts: int
    claimed_device_id: int | None
    lease_owner: str | None
    lease_expires_at: datetime | None
    result: dict[str, Any] | None
    error: str | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None


class ClaimedJob(JobOut):
    """A claimed job, with the lease token that heartbeat, complete and fail need."""

    lease_token: str


class JobList(BaseModel):
    items: list[JobOut]


class JobRef(BaseModel):
    """Ties an upload to a job's lease, so that an agent that lost its lease stores nothing."""

    model_config = ConfigDict(extra="forbid")

    id: int
    lease_token: str = Field(min_length=1, max_length=64)
