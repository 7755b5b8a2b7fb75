"""Alembic migrations of the latency service database (`hwlat db upgrade`)."""
