"""Schemathesis over the whole OpenAPI schema of a real ``hwlat serve`` on PostgreSQL.

    .venv/bin/python -m scripts.fuzz_api [--max-examples 200] [--seed N]

Starts the service on a fresh PostgreSQL database with a device that has a fitted predictor
(so generated requests for device 1 reach predict, tables and validations), runs the
``schemathesis`` command line against it, and reports what it ran and found. The checks are
the ones the issue asks for: no 5xx, and status, content type, headers and body as the schema
says. Writes docs/bench/fuzz.json; tests/test_fuzz_api.py runs a short version in make test.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from hwlat.service_process import ServiceProcess, hwlat_env
from latency_api import HwlatClient
from latency_api.redaction import redact
from latency_api.schemas.devices import DeviceIn
from latency_api.schemas.measurements import LayerMeasurementIn
from models import get_space
from scripts import bench_env
from scripts.postgres import create_postgres_database, drop_postgres_database

CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_headers_conformance,response_schema_conformance"
)
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
OUT = Path("docs/bench/fuzz.json")
DEVICE = DeviceIn.model_validate(
    {
        "name": "fuzz-host",
        "kind": "host",
        "runtime": "litert",
        "runtime_version": "fuzz",
        "delegate": "xnnpack",
        "threads": 1,
    }
)


def seed_data(url: str) -> None:
    with HwlatClient(url) as api:
        device = api.register_device(DEVICE).id
        tiny = get_space("tiny-64")
        api.upload_layers(
            device,
            [
                LayerMeasurementIn(
                    layer_key=str(key),
                    count=10,
                    median_ms=0.1 + i / 100,
                    mean_ms=0.1 + i / 100,
                    std_ms=0.001,
                    min_ms=0.09 + i / 100,
                    max_ms=0.2 + i / 100,
                )
                for i, key in enumerate(tiny.variants())
            ],
        )
        api.fit_predictor(device)


def run(
    workdir: Path,
    *,
    max_examples: int,
    seed: int = 20261127,
    phases: str = "examples,coverage,fuzzing,stateful",
    timeout_s: float = 3600,
) -> dict[str, Any]:
    url = create_postgres_database()
    # Without authentication (loopback only): the fuzzer would otherwise revoke its own token
    # through DELETE /v1/tokens/{id}. tests/test_access.py walks every route x scope instead.
    server = ServiceProcess(
        hwlat_env(workdir, url), workdir / "serve.log", no_auth=True, log_level="warning"
    )
    report = workdir / "schemathesis.json"
    try:
        server.start()
        seed_data(server.url)
        schema = httpx.get(f"{server.url}/openapi.json", timeout=30).json()
        in_schema = sum(len(ops) for ops in schema["paths"].values())
        started = time.monotonic()
        result = subprocess.run(
            [
                str(SCHEMATHESIS),
                "run",
                f"{server.url}/openapi.json",
                "--checks",
                CHECKS,
                "--phases",
                phases,
                "--max-examples",
                str(max_examples),
                "--seed",
                str(seed),
                # One worker thread: with two, hypothesis' lambda descriptions call ast.parse
                # from both at once, and CPython 3.11's AST constructor then fails now and
                # then with "SystemError: AST constructor recursion depth mismatch"
                # (python/cpython#106905), a failure of the tool, not of the service.
                "--workers",
                "1",
                "--request-timeout",
                "60",
                "--suppress-health-check",
                "all",
                "--generation-database",
                "none",
                "--no-color",
                "--report",
                "json",
                "--report-json-path",
                str(report),
            ],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
        seconds = time.monotonic() - started
        (workdir / "schemathesis.txt").write_text(result.stdout + result.stderr)
        log = (workdir / "serve.log").read_text(errors="replace")
    finally:
        server.close()
        drop_postgres_database(url)
    summary = _summary(report)
    return {
        "command": f"schemathesis run <service>/openapi.json --checks {CHECKS} --phases {phases} "
        f"--max-examples {max_examples} --seed {seed}",
        "exit_code": result.returncode,
        "seconds": round(seconds, 1),
        "operations_in_schema": in_schema,
        **summary,
        "server_tracebacks": log.count("Traceback"),
        "output_tail": _failures_part(result.stdout) + result.stderr[-2000:],
    }


def _failures_part(output: str) -> str:
    """The run's failures section and summary (all of it when it found nothing)."""
    start = output.find("FAILURES")
    return output[start:][-20_000:] if start >= 0 else output[-5_000:]


def _summary(report: Path) -> dict[str, Any]:
    """Operations tested, cases run and failures found, from the run's JSON report."""
    if not report.exists():
        return {"operations": 0, "cases": 0, "failures": None}
    data = json.loads(report.read_text())
    cases = data["test_cases"]
    return {
        "operations": data["operations"]["tested"],
        "cases": cases["generated"],
        "cases_with_failures": cases["with_failures"],
        "failures": cases["unique_failures"],
        "failure_kinds": {f["title"]: f["operations"] for f in data["failures"]},
        "errors": len(data["errors"]),
        "schemathesis_version": data["schemathesis_version"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--max-examples", type=int, default=200)
    parser.add_argument("--seed", type=int, default=20261127)
    args = parser.parse_args()
    import tempfile

    with tempfile.TemporaryDirectory(prefix="hwlat-fuzz-") as tmp:
        result = run(Path(tmp), max_examples=args.max_examples, seed=args.seed)
    result = {
        "benchmark": "fuzz",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "run": f"python -m scripts.fuzz_api --max-examples {args.max_examples} --seed {args.seed}",
        **result,
    }
    # Schemathesis' output can quote the requests it sent, headers included.
    bench_env.write_report(OUT, result)
    print(redact(result["output_tail"]))
    print(f"\nwrote {OUT}")
    if result["exit_code"] != 0:
        raise SystemExit(result["exit_code"])


if __name__ == "__main__":
    main()
