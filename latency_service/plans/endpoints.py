from __future__ import annotations

from fastapi import APIRouter

from latency_api.schemas.plans import PlanIn, PlanOut
from latency_service.deps import AdminToken, IdPath, SessionDep
from latency_service.plans import service

router = APIRouter(tags=["plans"])


@router.post("/v1/devices/{device_id}/plans", response_model=PlanOut, status_code=201)
def create_plan(device_id: IdPath, spec: PlanIn, session: SessionDep, _: AdminToken) -> PlanOut:
    """Choose what the device should measure next in a space (the layer variants whose
    measurement most reduces the predicted error of the space's networks, and calibration
    networks spread over its latency range) and queue the jobs for them; each job fits a new
    predictor version when it completes."""
    return service.plan(session, device_id, spec)
