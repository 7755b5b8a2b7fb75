"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from sqlalchemy import Engine

from latency_service import health, http_errors
from latency_service.auth.endpoints import router as tokens_router
from latency_service.auth.service import TokenCache
from latency_service.auth.throttle import FailedAuthThrottle
from latency_service.body_limit import BodyLimit
from latency_service.dashboard import endpoints as dashboard
from latency_service.db import READ_ONLY, make_engine, session_factory
from latency_service.devices.endpoints import router as devices_router
from latency_service.jobs.endpoints import router as jobs_router
from latency_service.measurements.endpoints import router as measurements_router
from latency_service.metrics.endpoints import router as metrics_router
from latency_service.metrics.middleware import RequestMetrics
from latency_service.metrics.multiproc import mark_worker_exited
from latency_service.plans.endpoints import router as plans_router
from latency_service.predictors.endpoints import router as predictors_router
from latency_service.predictors.service import CompiledCache
from latency_service.settings import Settings, get_settings
from latency_service.spaces.endpoints import router as spaces_router
from latency_service.spaces.resolver import SpaceResolution
from latency_service.validations.endpoints import router as validations_router


@asynccontextmanager
async def _lifespan(_: FastAPI) -> AsyncIterator[None]:
    yield
    mark_worker_exited()


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> FastAPI:
    settings = settings or get_settings()
    engine = engine or make_engine(settings.resolved_database_url)
    app = FastAPI(
        title="hwlat latency service",
        version=version("hwlat"),
        description="Stores layer and network latency measurements and serves predictions.",
        lifespan=_lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.session_factory = session_factory(engine)
    app.state.read_session_factory = session_factory(engine.execution_options(**READ_ONLY))
    app.state.token_cache = TokenCache(ttl_s=settings.token_cache_s)
    app.state.predictor_cache = CompiledCache(version_ttl_s=settings.predictor_refresh_s)
    app.state.auth_throttle = FailedAuthThrottle(
        settings.auth_failure_limit, settings.auth_failure_window_s
    )
    http_errors.install(app)
    app.add_middleware(SpaceResolution, sessions=app.state.read_session_factory)
    app.add_middleware(BodyLimit, max_body_bytes=settings.max_body_bytes)
    if settings.cors_origins:
        # Bearer tokens, not cookies: no credentials mode is needed for browser clients.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
            max_age=600,
        )
    # Added last, so outermost: it counts every answer, a refused body or a CORS one included.
    app.add_middleware(RequestMetrics)
    app.include_router(health.router, responses=http_errors.GENERAL_ERRORS)
    app.include_router(metrics_router)
    for router in (
        tokens_router,
        devices_router,
        spaces_router,
        measurements_router,
        jobs_router,
        predictors_router,
        plans_router,
        validations_router,
    ):
        app.include_router(router, responses=http_errors.ERROR_RESPONSES)
    dashboard.install(app)
    return app
