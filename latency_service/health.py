from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from latency_service.deps import ReadSessionDep
from latency_service.http_errors import error_body

router = APIRouter(tags=["health"])


@router.get(
    "/healthz",
    responses={
        200: {"content": {"application/json": {"example": {"status": "ok", "database": "ok"}}}},
        503: {"description": "The database does not answer"},
    },
)
def healthz(session: ReadSessionDep) -> JSONResponse:
    """Service and database up."""
    try:
        session.execute(text("SELECT 1"))
    except SQLAlchemyError as error:
        return JSONResponse(error_body("database_unavailable", str(error).splitlines()[0]), 503)
    return JSONResponse({"status": "ok", "database": "ok"})
