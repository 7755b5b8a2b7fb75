"""Fresh PostgreSQL databases for tests (the same helper the benchmarks use)."""

from __future__ import annotations

from latency_service.scratch import POSTGRES_URL as POSTGRES_URL
from latency_service.scratch import create_postgres_database as create_postgres_database
from latency_service.scratch import drop_postgres_database as drop_postgres_database
