"""Every table of the service, imported in one place so that ``metadata`` is complete."""

from latency_service.auth.tables import ApiToken
from latency_service.db import Base
from latency_service.devices.tables import Device
from latency_service.jobs.tables import Job
from latency_service.measurements.tables import IngestRequest, LayerMeasurement, NetworkMeasurement
from latency_service.predictions.tables import NetworkPrediction
from latency_service.predictors.tables import Predictor
from latency_service.spaces.tables import RegisteredSpace
from latency_service.validations.tables import Validation

metadata = Base.metadata

__all__ = [
    "ApiToken",
    "Device",
    "IngestRequest",
    "Job",
    "LayerMeasurement",
    "NetworkMeasurement",
    "NetworkPrediction",
    "Predictor",
    "RegisteredSpace",
    "Validation",
    "metadata",
]
