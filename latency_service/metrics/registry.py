"""The service's own metrics, shared by every worker through PROMETHEUS_MULTIPROC_DIR.

prometheus-client picks per-process files over in-memory values when this module is first
imported, so ``hwlat serve`` sets the directory before anything imports it (see
:mod:`latency_service.metrics.multiproc`).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# Seconds; predict and ingest answer in milliseconds, fits and exports take seconds.
LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
BATCH_BUCKETS = (1, 10, 100, 1_000, 10_000, 100_000)

REQUESTS = Counter(
    "hwlat_http_requests",
    "HTTP requests answered, by method, route template and status code.",
    ["method", "route", "status"],
)
REQUEST_SECONDS = Histogram(
    "hwlat_http_request_duration_seconds",
    "Time to answer an HTTP request, by method and route template.",
    ["method", "route"],
    buckets=LATENCY_BUCKETS_S,
)
PREDICT_BATCH = Histogram(
    "hwlat_predict_batch_size",
    "Architectures (or layer lists) per POST /v1/predict.",
    buckets=BATCH_BUCKETS,
)
INGEST_ROWS = Counter(
    "hwlat_ingest_rows",
    "Measurements stored (a replayed idempotent upload stores none), by kind.",
    ["kind"],
)
PREDICTORS_LOADED = Gauge(
    "hwlat_predictor_versions_loaded",
    "Predictor versions compiled in memory, per (device, space), per live worker process.",
    multiprocess_mode="liveall",
)
