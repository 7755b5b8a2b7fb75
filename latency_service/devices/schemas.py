from __future__ import annotations

import hashlib
import json
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class DeviceKind(StrEnum):
    host = "host"
    android = "android"


class Runtime(StrEnum):
    litert = "litert"
    onnxruntime = "onnxruntime"
    benchmark_model = "benchmark_model"


class Delegate(StrEnum):
    cpu = "cpu"
    xnnpack = "xnnpack"
    gpu = "gpu"
    nnapi = "nnapi"


class Precision(StrEnum):
    fp32 = "fp32"
    int8 = "int8"


Text = Field(default="", max_length=200)


class DeviceIn(BaseModel):
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
    delegate: Delegate = Delegate.xnnpack
    threads: int = Field(default=1, ge=1, le=256)
    precision: Precision = Precision.fp32
    affinity_mask: str = Field(default="", max_length=64, pattern=r"^[0-9a-fA-F]*$")
    governor: str = Field(default="", max_length=64)
    extra: dict[str, Any] = Field(default_factory=dict)

    def fingerprint(self) -> str:
        identity = self.model_dump(mode="json", exclude={"name", "extra"})
        return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


class DeviceOut(DeviceIn):
    model_config = ConfigDict(from_attributes=True, extra="ignore")

    id: int
    fingerprint_sha256: str = Field(validation_alias="fingerprint")
    created_at: datetime


class DeviceList(BaseModel):
    items: list[DeviceOut]
