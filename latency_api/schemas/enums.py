"""Every enumeration of the wire contract, defined once."""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from models.errors import UserInputError
from models.precision import Precision

__all__ = [
    "Delegate",
    "DeviceKind",
    "DeviceMetric",
    "ErrorCode",
    "JobKind",
    "JobStatus",
    "Precision",
    "Runtime",
    "Scope",
]


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


class DeviceMetric(StrEnum):
    """What a job may measure beside latency, which every measurement has."""

    memory = "memory"  # peak memory of one inference (see device_agents.memory)
    energy = "energy"  # energy per inference (see device_agents.energy)


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
            raise UserInputError(
                f"unknown scope {name!r}; choose one of {', '.join(s.value for s in cls)}"
            ) from None


_RANK: Final = {Scope.read: 1, Scope.ingest: 2, Scope.admin: 3}


class ErrorCode(StrEnum):
    """The ``error`` of every error answer ``{"error", "detail"}``: the service raises its
    domain errors with these codes, and the client tells its errors apart by them."""

    error = "error"
    not_found = "not_found"
    conflict = "conflict"
    invalid_input = "invalid_input"
    validation_error = "validation_error"
    batch_too_large = "batch_too_large"
    body_too_large = "body_too_large"
    idempotency_key_reused = "idempotency_key_reused"
    not_authenticated = "not_authenticated"
    forbidden = "forbidden"
    too_many_attempts = "too_many_attempts"
    lease_lost = "lease_lost"
    no_predictor = "no_predictor"
    predictor_incomplete = "predictor_incomplete"
    # The client's own: chunks of one request answered by two predictor versions.
    predictor_changed = "predictor_changed"
    database_unavailable = "database_unavailable"
    method_not_allowed = "method_not_allowed"
    internal_error = "internal_error"
    # An answer not in the contract's shape (a proxy in between answered instead).
    http_error = "http_error"
