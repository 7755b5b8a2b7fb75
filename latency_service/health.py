from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from latency_service.db_errors import unavailable
from latency_service.deps import ReadSessionDep
from latency_service.http_errors import domain_response

router = APIRouter(tags=["health"])


@router.get(
    "/healthz",
    responses={
        200: {"content": {"application/json": {"example": {"status": "ok", "database": "ok"}}}},
    },
)
def healthz(session: ReadSessionDep) -> JSONResponse:
    """Service and database up (503 database_unavailable when the database does not answer)."""
    try:
        session.execute(text("SELECT 1"))
    except SQLAlchemyError as error:
        return domain_response(unavailable(error))
    return JSONResponse({"status": "ok", "database": "ok"})
