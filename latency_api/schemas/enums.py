"""Every enumeration of the wire contract, defined once."""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from models.precision import Precision

__all__ = ["Delegate", "DeviceKind", "JobKind", "JobStatus", "Precision", "Runtime", "Scope"]


class DeviceKind(StrEnum):
    host = "host"
    android = "android"


class Runtime(StrEnum):
    """What runs the models: LiteRT or ONNX Runtime on a host, TFLite's benchmark_model on a
    phone."""

    litert = "litert"
    onnxruntime = "onnxruntime"
    benchmark_model = "benchmark_model"


class Delegate(StrEnum):
    cpu = "cpu"
    xnnpack = "xnnpack"
    gpu = "gpu"
    nnapi = "nnapi"


class JobKind(StrEnum):
    profile_layers = "profile_layers"
    profile_networks = "profile_networks"


class JobStatus(StrEnum):
    queued = "queued"
    leased = "leased"
    done = "done"
    failed = "failed"


class Scope(StrEnum):
    """Each scope includes the ones before it: an admin token may also ingest and read."""

    read = "read"
    ingest = "ingest"
    admin = "admin"

    def includes(self, other: Scope) -> bool:
        return _RANK[self] >= _RANK[other]

    @classmethod
    def parse(cls, name: str) -> Scope:
        try:
            return cls(name)
        except ValueError:
            raise ValueError(
                f"unknown scope {name!r}; choose one of {', '.join(s.value for s in cls)}"
            ) from None


_RANK: Final = {Scope.read: 1, Scope.ingest: 2, Scope.admin: 3}
