"""What every benchmark records about the run: machine, Python, package versions, revision,
and its command line; how it writes the report, with secrets redacted; and the service of its
own that most benchmarks start.

The reports are committed (docs/bench/*.json) and quoted in docs/*.md, so a token given as
``--token`` or in the environment must never reach them: :func:`command` and
:func:`write_report` pass everything through ``latency_api.redaction``.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from device_agents.host import cpu_model
from hwlat.service_process import ServiceProcess, create_token, hwlat_env
from latency_api import HwlatClient
from latency_api.redaction import redact, redact_json


def command(module: str, argv: list[str] | None = None) -> str:
    """How this run was started, e.g. ``python -m scripts.bench_search --token ***``."""
    return redact(" ".join([f"python -m {module}", *(sys.argv[1:] if argv is None else argv)]))


def git_revision() -> str:
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return rev + ("+dirty" if dirty else "")


def environment(packages: tuple[str, ...]) -> dict[str, Any]:
    found = {}
    for name in packages:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return {
        "cpu": cpu_model(),
        "cpus": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "load_average_1_5_15min": os.getloadavg(),
        "packages": found,
        "git": git_revision(),
    }


def load_around(before: tuple[float, float, float]) -> dict[str, list[float]]:
    """The load average (1, 5, 15 min) before the run and now: other work on the machine
    shows here."""
    return {
        "before": [round(x, 2) for x in before],
        "after": [round(x, 2) for x in os.getloadavg()],
    }


def write_report(path: Path, report: dict[str, Any], indent: int = 2) -> None:
    """Write a run's JSON with every secret redacted: a command line is not the only place
    one can hide (a tool's output, a URL with a password)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(redact_json(report), indent=indent) + "\n", encoding="utf-8")


@contextmanager
def local_service(name: str) -> Iterator[tuple[HwlatClient, str, str]]:
    """A service of the benchmark's own (a fresh store in a temporary directory, warnings only
    in its log) and an admin token named ``name``: (client, url, token)."""
    with tempfile.TemporaryDirectory() as tmp:
        env = hwlat_env(Path(tmp))
        with ServiceProcess(env, Path(tmp) / "service.log", log_level="warning") as server:
            token = create_token(env, "admin", name=name)
            with HwlatClient(server.url, token) as client:
                yield client, server.url, token
