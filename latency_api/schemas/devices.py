"""Devices: hardware, runtime and the settings that change what a measurement means."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from latency_api.schemas.enums import Delegate, DeviceKind, Precision, Runtime

Text = Field(default="", max_length=200)


class DeviceSettings(BaseModel):
    """How models run on the device. Part of its identity: figures measured with other
    threads, delegate, precision or cores are other figures, so they belong to another device.
    Per-job timing (warm-up, runs, repeats) is not here; see ``JobTiming``."""

    model_config = ConfigDict(extra="forbid")

    delegate: Delegate = Delegate.xnnpack
    threads: int = Field(default=1, ge=1, le=256)
    precision: Precision = Precision.FP32
    affinity_mask: str = Field(
        default="",
        max_length=64,
        pattern=r"^[0-9a-fA-F]*$",
        description="CPUs the runtime is pinned to, as taskset's hex mask; empty: not pinned",
    )


class DeviceIn(DeviceSettings):
    """Hardware, runtime and settings. Every field but ``name`` and ``extra`` identifies it."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "pixel-7-lab-3",
                    "kind": "android",
                    "model": "Pixel 7",
                    "soc": "gs201",
                    "abi": "arm64-v8a",
                    "os_version": "14",
                    "runtime": "benchmark_model",
                    "runtime_version": "2.16.1",
                    "delegate": "xnnpack",
                    "threads": 1,
                    "precision": "fp32",
                    "affinity_mask": "f0",
                    "governor": "performance",
                }
            ]
        },
    )

    name: str = Field(min_length=1, max_length=200)
    kind: DeviceKind
    model: str = Text
    soc: str = Text
    abi: str = Field(default="", max_length=64)
    os_version: str = Text
    runtime: Runtime
    runtime_version: str = Field(min_length=1, max_length=64)
    governor: str = Field(default="", max_length=64)
    extra: dict[str, Any] = Field(default_factory=dict)

    @property
    def settings(self) -> DeviceSettings:
        return DeviceSettings.model_validate(
            self.model_dump(include=set(DeviceSettings.model_fields))
        )

    def fingerprint(self) -> str:
        identity = self.model_dump(mode="json", exclude={"name", "extra"})
        return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


class DeviceOut(DeviceIn):
    model_config = ConfigDict(from_attributes=True, extra="ignore")

    id: int
    # "fingerprint" is the table's column; "fingerprint_sha256" is how the answer spells it.
    fingerprint_sha256: str = Field(
        validation_alias=AliasChoices("fingerprint_sha256", "fingerprint")
    )
    created_at: datetime


class DeviceList(BaseModel):
    items: list[DeviceOut]
