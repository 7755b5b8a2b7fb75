"""Validation reports: a predictor version against networks measured end to end."""

from __future__ import annotations

from fastapi import APIRouter

from latency_api.schemas.validations import (
    MetricValidationIn,
    MetricValidationOut,
    ValidationIn,
    ValidationList,
    ValidationOut,
)
from latency_service.deps import AdminToken, IdPath, ReadSessionDep, ReadToken, SessionDep
from latency_service.predictions import service as predictions
from latency_service.validations import service
from latency_service.validations.metrics import validate_metric

router = APIRouter(tags=["validations"])


@router.post(
    "/v1/devices/{device_id}/validations",
    response_model=ValidationOut,
    status_code=201,
    responses={
        409: {"description": "No predictor yet, or it cannot cover the space"},
        422: {"description": "Too few measured networks, or an unmeasured one was named"},
    },
)
def create_validation(
    device_id: IdPath, spec: ValidationIn, session: SessionDep, _: AdminToken
) -> ValidationOut:
    """Validate a predictor version on the device's stored network measurements, against
    baselines fitted on the same data; the report is stored and returned."""
    report = service.validate(session, device_id, spec)
    # The validation networks were just measured: store what this version predicts for them.
    predictions.record_for_version(session, device_id, report.predictor_version, report.space)
    return ValidationOut.model_validate(report)


@router.post(
    "/v1/devices/{device_id}/validations/metrics",
    response_model=MetricValidationOut,
    responses={
        409: {"description": "No predictor, or it has no model of the metric"},
        422: {"description": "Too few networks measured for the metric, or an unmeasured one"},
    },
)
def create_metric_validation(
    device_id: IdPath, spec: MetricValidationIn, session: ReadSessionDep, _: ReadToken
) -> MetricValidationOut:
    """Validate a predictor version's peak memory or energy on the device's networks measured
    for it, against the baseline a user would otherwise reach for; computed, not stored."""
    return validate_metric(session, device_id, spec)


@router.get("/v1/devices/{device_id}/validations", response_model=ValidationList)
def list_validations(device_id: IdPath, session: ReadSessionDep, _: ReadToken) -> ValidationList:
    """The device's validation reports, oldest first."""
    rows = service.list_for_device(session, device_id)
    return ValidationList(items=[ValidationOut.model_validate(r) for r in rows])
