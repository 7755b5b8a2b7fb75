"""The profiling job queue: what to measure, how to time it, and the leases agents hold."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from latency_api.schemas.common import Id, Int32
from latency_api.schemas.enums import (
    Delegate,
    DeviceKind,
    DeviceMetric,
    JobKind,
    JobStatus,
    Precision,
    Runtime,
)
from latency_api.schemas.spaces import space_by_name
from models import DEFAULT_SPACE, LayerKey, parse

MAX_JOB_ITEMS = 10_000

# Each timing setting with its limits, defined once: a job's timing may leave any of them out
# (JobTiming), an agent's timing has them all (device_agents.runners.Timing). A window's time
# is bounded by max_secs, so num_runs may be large: a run stops at whichever comes first.
WarmupRuns = Annotated[int, Field(ge=0, le=10_000)]
NumRuns = Annotated[int, Field(ge=1, le=10_000_000)]
MinSecs = Annotated[float, Field(ge=0, le=3600)]
MaxSecs = Annotated[float, Field(gt=0, le=3600)]
Repeats = Annotated[int, Field(ge=1, le=100)]
CooldownSecs = Annotated[float, Field(ge=0, le=600)]
REPEATS_HELP = "Interleaved passes over the job's list"
COOLDOWN_HELP = "Pause between models"


class JobTiming(BaseModel):
    """How each model of a job is timed (benchmark_model's flags where they overlap).

    A field the job leaves out takes the agent's own default (its command-line flags); a field
    the job sets wins over the agent, so one job is measured the same way on every device.
    """

    model_config = ConfigDict(extra="forbid")

    warmup_runs: WarmupRuns | None = None
    num_runs: NumRuns | None = None
    min_secs: MinSecs | None = None
    max_secs: MaxSecs | None = None
    repeats: Repeats | None = Field(default=None, description=REPEATS_HELP)
    cooldown_secs: CooldownSecs | None = Field(default=None, description=COOLDOWN_HELP)

    def over(self, defaults: JobTiming) -> JobTiming:
        """These settings where set, ``defaults`` elsewhere."""
        return defaults.model_copy(update=self.model_dump(exclude_none=True))


class DeviceSelector(BaseModel):
    """Any device whose fields equal all of these may run the job."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    kind: DeviceKind | None = None
    model: str | None = None
    soc: str | None = None
    abi: str | None = None
    os_version: str | None = None
    runtime: Runtime | None = None
    runtime_version: str | None = None
    delegate: Delegate | None = None
    threads: Int32 | None = None
    precision: Precision | None = None

    def fields(self) -> dict[str, str]:
        """The fields that were given, as the strings a device's fields are compared with."""
        return {k: str(v) for k, v in self.model_dump(mode="json", exclude_none=True).items()}


class _Profile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    metrics: list[DeviceMetric] = Field(
        default_factory=list,
        description="Measure these too, beside latency, each in its own pass after the timed "
        "ones (memory: peak memory of an inference; energy: energy per inference)",
    )

    @field_validator("metrics")
    @classmethod
    def _once_each(cls, metrics: list[DeviceMetric]) -> list[DeviceMetric]:
        return sorted(set(metrics))


class ProfileLayers(_Profile):
    """Time each layer variant on its own."""

    kind: Literal["profile_layers"] = "profile_layers"
    layer_keys: list[str] = Field(min_length=1, max_length=MAX_JOB_ITEMS)

    @field_validator("layer_keys")
    @classmethod
    def _canonical(cls, keys: list[str]) -> list[str]:
        return [str(parse(k)) for k in keys]


class ProfileNetworks(_Profile):
    """Time whole networks of a search space, end to end."""

    kind: Literal["profile_networks"] = "profile_networks"
    space: str = Field(max_length=100)
    architectures: list[list[Int32]] = Field(min_length=1, max_length=MAX_JOB_ITEMS)

    @model_validator(mode="after")
    def _fit_space(self) -> Self:
        space = space_by_name(self.space)
        if space is not None:  # None: a registered space this client has not fetched
            self.architectures = [list(space.validate(a)) for a in self.architectures]
        return self


JobPayload = Annotated[ProfileLayers | ProfileNetworks, Field(discriminator="kind")]


def split_payloads(
    *,
    layers: Sequence[str | LayerKey] = (),
    space: str | None = None,
    architectures: Sequence[Sequence[int]] = (),
    chunk: int,
    metrics: Sequence[DeviceMetric] = (),
) -> list[ProfileLayers | ProfileNetworks]:
    """Payloads of at most ``chunk`` items each: layers first, then networks of ``space``.

    Small jobs bound what a lost lease throws away and let several devices share the work.
    """
    if chunk < 1:
        raise ValueError(f"chunk={chunk}; a job needs at least one item")
    keys = [str(k) for k in layers]
    payloads: list[ProfileLayers | ProfileNetworks] = [
        ProfileLayers(layer_keys=keys[i : i + chunk], metrics=list(metrics))
        for i in range(0, len(keys), chunk)
    ]
    if len(architectures) == 0:  # len, not truth: a NumPy array of architectures is fine
        return payloads
    if space is None:
        raise ValueError("architectures need the search space they index")
    rows = [[int(c) for c in arch] for arch in architectures]
    payloads += [
        ProfileNetworks(space=space, architectures=rows[i : i + chunk], metrics=list(metrics))
        for i in range(0, len(rows), chunk)
    ]
    return payloads


class JobIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "device_id": 1,
                    "payload": {
                        "kind": "profile_layers",
                        "layer_keys": ["mbconv_hw56_i24_o40_k5_e6_s2"],
                    },
                    "timing": {"warmup_runs": 10, "num_runs": 50},
                },
                {
                    "selector": {"kind": "android", "model": "Pixel 7"},
                    "payload": {
                        "kind": "profile_networks",
                        "space": DEFAULT_SPACE,
                        "architectures": [[0] * 20],
                    },
                },
            ]
        },
    )

    device_id: Id | None = None
    selector: DeviceSelector | None = None
    payload: JobPayload
    timing: JobTiming = Field(default_factory=JobTiming)
    max_attempts: int = Field(default=3, ge=1, le=20)
    fit_after: bool = Field(
        default=False,
        description="Fit a new predictor version for the device when this job completes (the "
        "jobs active sampling creates set it: each round of measurements improves the "
        "predictor with no step a person must take)",
    )

    @model_validator(mode="after")
    def _one_target(self) -> Self:
        has_selector = self.selector is not None and bool(self.selector.fields())
        if (self.device_id is None) == (not has_selector):
            raise ValueError("give exactly one of device_id or a non-empty selector")
        return self


class ClaimIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "device_id": 1,
                    "agent": "host:lab-1",
                    "lease_seconds": 300,
                    "request_id": "3f2b6c1e-claim-1",
                }
            ]
        },
    )

    device_id: Id
    agent: str = Field(min_length=1, max_length=200)
    lease_seconds: float = Field(default=300, gt=0, le=86_400)
    request_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="Chosen by the agent per claim: a retry with the same id gets the job the "
        "first attempt leased (if its answer was lost) instead of a second one",
    )


_TOKEN_EXAMPLE = "4f1c2a9e0b7d4e6f8a1b2c3d4e5f6a7b"


class LeaseIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"lease_token": _TOKEN_EXAMPLE, "lease_seconds": 300}]},
    )

    lease_token: str = Field(min_length=1, max_length=64)
    lease_seconds: float = Field(default=300, gt=0, le=86_400)


class JobResult(BaseModel):
    """What an agent reports when it completes a job."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["layers", "networks"]
    stored: int = Field(ge=0)
    ids: list[int] = Field(default_factory=list)
    remeasured: int = Field(
        default=0, ge=0, description="Measurements taken again because they showed interference"
    )


class CompleteIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "lease_token": _TOKEN_EXAMPLE,
                    "result": {"kind": "layers", "stored": 2, "ids": [41, 42], "remeasured": 0},
                }
            ]
        },
    )

    lease_token: str = Field(min_length=1, max_length=64)
    result: JobResult


class FailIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"lease_token": _TOKEN_EXAMPLE, "reason": "device lost: EMU0001 offline"}]
        },
    )

    lease_token: str = Field(min_length=1, max_length=64)
    reason: str = Field(min_length=1, max_length=10_000)
    retry: bool = True


class JobOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: JobKind
    device_id: int | None
    selector: DeviceSelector | None
    payload: JobPayload
    timing: JobTiming
    status: JobStatus
    attempts: int
    max_attempts: int
    fit_after: bool = False
    claimed_device_id: int | None
    lease_owner: str | None
    lease_expires_at: datetime | None
    result: JobResult | None
    error: str | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None

    @property
    def size(self) -> int:
        """Layers or networks the job measures."""
        if isinstance(self.payload, ProfileLayers):
            return len(self.payload.layer_keys)
        return len(self.payload.architectures)


class ClaimedJob(JobOut):
    """A claimed job, with the lease token that heartbeat, complete and fail need."""

    lease_token: str


class JobRef(BaseModel):
    """Ties an upload to a job's lease, so that an agent that lost its lease stores nothing."""

    model_config = ConfigDict(extra="forbid")

    id: Id
    lease_token: str = Field(min_length=1, max_length=64)
