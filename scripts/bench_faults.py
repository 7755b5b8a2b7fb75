"""Run every fault scenario of scripts/fault_scenarios.py and write docs/bench/faults.json.

    .venv/bin/python -m scripts.bench_faults

The same scenarios tests/test_faults.py asserts on, with their figures kept: what was sent and
stored, what the clients saw, how the service answered during each outage.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scripts import bench_env, fault_scenarios

OUT = Path("docs/bench/faults.json")


def main() -> None:
    scenarios: dict[str, Callable[[Path], dict[str, Any]]] = {
        "service_sigkilled_mid_ingest": fault_scenarios.kill_service_mid_ingest,
        "agent_sigkilled_mid_job": fault_scenarios.kill_agent_mid_job,
        "postgres_connections_killed": fault_scenarios.postgres_connections_killed,
        "postgres_restarted": fault_scenarios.postgres_restarted,
    }
    results: dict[str, Any] = {}
    for name, scenario in scenarios.items():
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix=f"hwlat-{name}-") as tmp:
            results[name] = scenario(Path(tmp)) | {"wall_s": round(time.monotonic() - started, 1)}
        print(f"{name}: {json.dumps(results[name])[:300]}")
    report = {
        "benchmark": "faults",
        "command": bench_env.command("scripts.bench_faults"),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "environment": bench_env.environment(("uvicorn", "sqlalchemy", "psycopg")),
        "results": results,
    }
    bench_env.write_report(OUT, report)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
