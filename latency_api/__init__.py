"""The wire contract of the latency service: the schemas both sides speak, and a typed client.

Importing this package needs only pydantic and httpx (and ``models``' pure vocabulary): no
FastAPI, SQLAlchemy, TensorFlow or torch, so search code can depend on it alone.
"""

from latency_api.client import HwlatClient, JobLease
from latency_api.errors import (
    AccessDenied,
    HwlatError,
    JobFailed,
    JobsTimedOut,
    LeaseLost,
    NotFound,
    ServiceError,
    ServiceUnreachable,
)
from latency_api.schemas.enums import ErrorCode

__all__ = [
    "AccessDenied",
    "ErrorCode",
    "HwlatClient",
    "HwlatError",
    "JobFailed",
    "JobLease",
    "JobsTimedOut",
    "LeaseLost",
    "NotFound",
    "ServiceError",
    "ServiceUnreachable",
]
