"""``GET /metrics`` in Prometheus' text format: every worker's counts plus the database's state."""

from __future__ import annotations

import os
from collections.abc import Iterable

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy.orm import Session

from latency_api.schemas.enums import Scope
from latency_service.auth.service import require
from latency_service.deps import ReadSessionDep, SettingsDep, principal_for
from latency_service.jobs import service as jobs
from latency_service.metrics.multiproc import ENV

router = APIRouter(tags=["metrics"])


class DatabaseState(Collector):
    """Read at scrape time: the queue and the agents are the database's, not a worker's."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def describe(self) -> Iterable[Metric]:
        return []  # no query when registering

    def collect(self) -> Iterable[Metric]:
        by_status = GaugeMetricFamily("hwlat_jobs", "Profiling jobs by status.", labels=["status"])
        for status, n in jobs.count_by_status(self._session).items():
            by_status.add_metric([status], n)
        yield by_status
        agents = jobs.per_agent(self._session)
        yield GaugeMetricFamily(
            "hwlat_agents_seen", "Agents that hold or have finished a job.", value=len(agents)
        )
        last_seen = GaugeMetricFamily(
            "hwlat_agent_last_seen_timestamp_seconds",
            "Last job activity of each agent (Unix time).",
            labels=["agent"],
        )
        for agent in agents:
            last_seen.add_metric([agent["agent"]], agent["last_seen_at"].timestamp())
        yield last_seen


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
)
def metrics(request: Request, session: ReadSessionDep, settings: SettingsDep) -> Response:
    """Prometheus metrics; needs a read token only when HWLAT_METRICS_REQUIRE_TOKEN is set."""
    if settings.metrics_require_token:
        require(
            principal_for(request, session, settings, request.headers.get("authorization")),
            Scope.read,
        )
    if os.environ.get(ENV):
        workers = CollectorRegistry()
        MultiProcessCollector(workers)  # type: ignore[no-untyped-call]
    else:
        workers = REGISTRY
    database = CollectorRegistry()
    database.register(DatabaseState(session))
    body = generate_latest(workers) + generate_latest(database)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
