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


def _locked(lock: Path) -> dict[str, list[str]]:
    """Package name -> its hashes, from a pip-compile lock."""
    found: dict[str, list[str]] = {}
    name = ""
    for line in lock.read_text().splitlines():
        pinned = re.match(r"^([A-Za-z0-9_.\-]+)==(\S+)", line)
        if pinned:
            name = re.sub(r"[-_.]+", "-", pinned.group(1)).lower()
            found[name] = []
        for digest in re.findall(r"--hash=sha256:([0-9a-f]{64})", line):
            found[name].append(digest)
    return found


def _requirements(extras: list[str]) -> set[str]:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = list(project["dependencies"])
    for extra in extras:
        wanted += [r for r in project["optional-dependencies"][extra] if not r.startswith("hwlat")]
    return {
        re.sub(r"[-_.]+", "-", re.split(r"[\s<>=!~\[;]", r, maxsplit=1)[0]).lower() for r in wanted
    }


def test_every_dependency_is_locked_with_hashes() -> None:
    """A dependency added to pyproject.toml without `make lock` fails here, by name."""
    for lock, extras in (
        ("dev.lock", ["convert", "agents", "service", "search", "dev"]),
        ("service.lock", ["service"]),
    ):
        locked = _locked(ROOT / "requirements" / lock)
        missing = _requirements(extras) - set(locked)
        assert not missing, f"{sorted(missing)} not in requirements/{lock}; run make lock"
        unhashed = [name for name, hashes in locked.items() if not hashes]
        assert not unhashed, f"{unhashed} have no hash in requirements/{lock}"
    assert "hwlat" not in _locked(ROOT / "requirements" / "dev.lock")


def test_torch_is_locked_to_the_local_cpu_wheel() -> None:
    lock = (ROOT / "requirements" / "dev.lock").read_text()
    assert re.search(r"^torch==2\.13\.0\+cpu \\$", lock, re.M), "torch must be 2.13.0+cpu"
    assert "nvidia" not in lock.lower()  # no CUDA libraries came along
    wheels = list(Path("/opt/wheels").glob("torch-2.13.0+cpu-*.whl"))
    if wheels:  # on this kind of machine: the pinned hash is that wheel's
        import hashlib

        digest = hashlib.sha256(wheels[0].read_bytes()).hexdigest()
        assert digest in _locked(ROOT / "requirements" / "dev.lock")["torch"]


def test_the_service_image_installs_the_lock_with_hashes() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert "COPY requirements/service.lock" in text
    assert "pip install --require-hashes -r requirements/service.lock" in text
    assert "pip install --no-deps ." in text
