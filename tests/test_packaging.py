"""The deployment files agree with the code they start (no Docker engine needed)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import yaml

from latency_service.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def test_compose_points_the_service_at_postgres_through_a_real_setting() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    service = compose["services"]["service"]
    url = service["environment"]["HWLAT_DATABASE_URL"]
    assert Settings(database_url=url).resolved_database_url.startswith("postgresql+psycopg://")
    assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
    db = compose["services"]["postgres"]["environment"]
    assert (
        f"{db['POSTGRES_USER']}:{db['POSTGRES_PASSWORD']}@postgres:5432/{db['POSTGRES_DB']}" in url
    )


def test_dockerfile_command_is_a_valid_hwlat_invocation() -> None:
    text = (ROOT / "Dockerfile").read_text()
    command = json.loads(re.search(r"^CMD (\[.*\])$", text, re.M).group(1))  # type: ignore[union-attr]
    assert command[:2] == ["hwlat", "serve"]
    help_text = subprocess.run(
        [sys.executable, "-m", "hwlat.cli", "serve", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for flag in (a for a in command[2:] if a.startswith("--")):
        assert flag in help_text
    packages = ("hwlat", "models", "predictor", "latency_api", "latency_service", "device_agents")
    for directory in (*packages, "migrations"):
        assert f"COPY {directory} ./{directory}" in text
