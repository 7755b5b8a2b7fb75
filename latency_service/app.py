"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version

from fastapi import FastAPI
from sqlalchemy import Engine

from latency_service import health, http_errors
from latency_service.auth.endpoints import router as tokens_router
from latency_service.auth.service import TokenCache
from latency_service.dashboard import endpoints as dashboard
from latency_service.db import READ_ONLY, make_engine, session_factory
from latency_service.devices.endpoints import router as devices_router
from latency_service.jobs.endpoints import router as jobs_router
from latency_service.measurements.endpoints import router as measurements_router
from latency_service.metrics.endpoints import router as metrics_router
from latency_service.metrics.middleware import RequestMetrics
from latency_service.metrics.multiproc import mark_worker_exited
from latency_service.predictors.endpoints import router as predictors_router
from latency_service.predictors.service import CompiledCache
from latency_service.settings import Settings, get_settings
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
    http_errors.install(app)
    app.add_middleware(RequestMetrics)
    app.include_router(health.router)
    app.include_router(metrics_router)
    app.include_router(tokens_router)
    app.include_router(devices_router)
    app.include_router(measurements_router)
    app.include_router(jobs_router)
    app.include_router(predictors_router)
    app.include_router(validations_router)
    dashboard.install(app)
    return app
