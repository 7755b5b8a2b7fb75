"""The wire contract of the latency service: the schemas both sides speak, and a typed client.

Importing this package needs only pydantic and httpx (and ``models``' pure vocabulary): no
FastAPI, SQLAlchemy, TensorFlow or torch, so search code can depend on it alone.
"""

from latency_api.client import HwlatClient, JobLease
from latency_api.errors import HwlatError, LeaseLost, ServiceError, ServiceUnreachable

__all__ = [
    "HwlatClient",
    "HwlatError",
    "JobLease",
    "LeaseLost",
    "ServiceError",
    "ServiceUnreachable",
]
