from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import select

from latency_service.deps import AdminToken, ReadSessionDep, ReadToken, SessionDep
from latency_service.devices import service as devices
from latency_service.errors import InvalidInput
from latency_service.predictions import service as predictions
from latency_service.validations.schemas import ValidationIn, ValidationList, ValidationOut
from latency_service.validations.tables import Validation

router = APIRouter(tags=["validations"])


@router.post("/v1/devices/{device_id}/validations", response_model=ValidationOut, status_code=201)
def store_validation(
    device_id: int, report: ValidationIn, session: SessionDep, _: AdminToken
) -> ValidationOut:
    """Store a validation report (made by `hwlat validate`) for a predictor version."""
    devices.get(session, device_id)
    n = report.metrics.get("n")
    if not isinstance(n, int) or n < 1:
        raise InvalidInput("metrics.n must be the number of validated architectures (>= 1)")
    row = Validation(device_id=device_id, n=n, **report.model_dump())
    session.add(row)
    session.commit()
    # The validation networks were just measured: store what this version predicts for them.
    predictions.record_for_version(session, device_id, report.predictor_version, report.space)
    return ValidationOut.model_validate(row)


@router.get("/v1/devices/{device_id}/validations", response_model=ValidationList)
def list_validations(device_id: int, session: ReadSessionDep, _: ReadToken) -> ValidationList:
    devices.get(session, device_id)
    rows = session.scalars(
        select(Validation).where(Validation.device_id == device_id).order_by(Validation.id)
    ).all()
    return ValidationList(items=[ValidationOut.model_validate(r) for r in rows])
