"""Every route of the OpenAPI schema called by every kind of caller; the answers as a table.

    .venv/bin/python -m scripts.access_matrix

An in-process app on a throwaway SQLite store, tokens of each scope plus a revoked one, and ids
that exist nowhere (so that an allowed call reaches a 404 or 422 and changes nothing). Writes
docs/bench/access.json; tests/test_access.py checks the same walk against its table of who may
do what.
"""

from __future__ import annotations

import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from fastapi.testclient import TestClient

from latency_api.schemas.enums import Scope
from latency_service.app import create_app
from latency_service.auth.service import create_token, revoke
from latency_service.db import make_engine, session_factory
from latency_service.migrate import upgrade
from latency_service.settings import Settings
from scripts import bench_env

OUT = Path("docs/bench/access.json")
CALLERS = ("no token", "revoked", "read", "ingest", "admin")


def walk(workdir: Path) -> dict[str, dict[str, int]]:
    """The status every caller gets from every route, on a throwaway SQLite store."""
    url = f"sqlite:///{workdir / 'hwlat.db'}"
    upgrade(url)
    engine = make_engine(url)
    try:
        with session_factory(engine)() as session:
            headers: dict[str, dict[str, str]] = {"no token": {}}
            for scope in Scope:
                headers[scope.value] = _bearer(create_token(session, name=scope, scope=scope)[1])
            doomed, secret = create_token(session, name="revoked", scope=Scope.admin)
            revoke(session, doomed.id)
            headers["revoked"] = _bearer(secret)
        # The walk fails authentication on purpose, far more often than the throttle allows.
        settings = Settings(data_dir=workdir, auth_failure_limit=1_000_000)
        with TestClient(create_app(settings, engine=engine)) as client:
            answers = walk_with(client, headers)
    finally:
        engine.dispose()
    return {
        route: {caller: r.status_code for caller, r in row.items()}
        for route, row in answers.items()
    }


def walk_with(
    client: TestClient, headers: dict[str, dict[str, str]]
) -> dict[str, dict[str, httpx.Response]]:
    """Every route of ``client``'s schema called as each caller in ``headers``, with ids that
    exist nowhere; the answers by "METHOD /path" and caller."""
    answers: dict[str, dict[str, httpx.Response]] = {}
    schema = client.get("/openapi.json").json()
    for path, operations in schema["paths"].items():
        url_path = re.sub(r"\{version\}", "1", re.sub(r"\{\w+_id\}", "987654", path))
        for method in operations:
            row = answers[f"{method.upper()} {path}"] = {}
            for caller, caller_headers in headers.items():
                row[caller] = client.request(method, url_path, json={}, headers=caller_headers)
    return answers


def _bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="hwlat-access-") as tmp:
        answers = walk(Path(tmp))
    report: dict[str, Any] = {
        "benchmark": "access",
        "command": "python -m scripts.access_matrix",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "callers": list(CALLERS),
        "answers": answers,
    }
    bench_env.write_report(OUT, report)
    print(f"{len(answers)} routes x {len(CALLERS)} callers; wrote {OUT}")


if __name__ == "__main__":
    main()
