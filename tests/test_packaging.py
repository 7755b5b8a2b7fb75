"""The deployment files agree with the code they start (no Docker engine needed)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from latency_service.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


# ${VAR}, ${VAR:-default}, ${VAR:?message}: what docker compose substitutes from .env.
VARIABLE = re.compile(r"\$\{(\w+)(?::([-?])([^}]*))?\}")


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def env_example() -> dict[str, str]:
    lines = (ROOT / ".env.example").read_text().splitlines()
    pairs = (line.split("=", 1) for line in lines if line and not line.startswith("#"))
    return {name.strip(): value.strip() for name, value in pairs}


def substitute(value: str, env: dict[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        name, kind, rest = match.groups()
        if env.get(name):
            return env[name]
        if kind == "?":
            raise KeyError(f"{name} must be set: {rest}")
        return rest if kind == "-" else ""

    return VARIABLE.sub(one, value)


def strings(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [s for key, value in node.items() for s in strings(key) + strings(value)]
    if isinstance(node, list):
        return [s for item in node for s in strings(item)]
    return [node] if isinstance(node, str) else []


def test_compose_runs_a_lab_postgres_service_agent_and_optional_prometheus() -> None:
    services = compose()["services"]
    assert set(services) == {"postgres", "service", "agent", "prometheus"}
    assert services["prometheus"]["profiles"] == ["monitoring"]
    assert all("profiles" not in services[name] for name in ("postgres", "service", "agent"))

    service = services["service"]
    assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "/healthz" in " ".join(service["healthcheck"]["test"])
    command = service["command"]
    assert command[:2] == ["hwlat", "serve"]
    assert "--no-upgrade" not in command  # migrations run at every start
    workers = int(substitute(command[command.index("--workers") + 1], env_example()))
    assert workers > 1

    agent = services["agent"]
    assert agent["command"][:3] == ["hwlat", "agent", "host"]
    assert agent["environment"]["HWLAT_SERVICE_URL"] == "http://service:8000"
    assert agent["depends_on"]["service"]["condition"] == "service_healthy"
    assert "agents" in agent["build"]["args"]["EXTRAS"]

    scrape = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    job = scrape["scrape_configs"][0]
    assert job["metrics_path"] == "/metrics"
    assert job["dns_sd_configs"][0]["names"] == ["service"]
    assert job["dns_sd_configs"][0]["port"] == 8000


def test_compose_holds_no_secret_and_env_example_names_every_setting() -> None:
    document = compose()
    secretive = re.compile(r"PASSWORD|TOKEN|SECRET", re.I)
    for name, service in document["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if secretive.search(key) and "REQUIRE" not in key:
                assert VARIABLE.fullmatch(str(value)), f"{name}.{key} is a literal: {value!r}"
    for text in strings(document):
        # A password inside a URL must come from the environment as well.
        for url_password in re.findall(r"://[^:/@]+:([^@]+)@", text):
            assert VARIABLE.fullmatch(url_password), text
    used = {m.group(1) for text in strings(document) for m in VARIABLE.finditer(text)}
    assert used <= set(env_example()), f"not in .env.example: {used - set(env_example())}"
    assert ".env" in (ROOT / ".gitignore").read_text().splitlines()


def test_compose_points_the_service_at_postgres_through_a_real_setting() -> None:
    env = {**env_example(), "POSTGRES_PASSWORD": "s3cret"}
    services = compose()["services"]
    url = substitute(services["service"]["environment"]["HWLAT_DATABASE_URL"], env)
    assert Settings(database_url=url).resolved_database_url.startswith("postgresql+psycopg://")
    db = {k: substitute(str(v), env) for k, v in services["postgres"]["environment"].items()}
    assert (
        f"{db['POSTGRES_USER']}:{db['POSTGRES_PASSWORD']}@postgres:5432/{db['POSTGRES_DB']}" in url
    )
    with pytest.raises(KeyError, match="POSTGRES_PASSWORD"):
        substitute(services["service"]["environment"]["HWLAT_DATABASE_URL"], env_example())


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


def test_the_wheel_carries_the_dashboard_templates_and_static_files(tmp_path: Path) -> None:
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
    subprocess.run(
        [*build, "-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("hwlat-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        packaged = set(archive.namelist())
    dashboard = ROOT / "latency_service" / "dashboard"
    needed = {
        str(path.relative_to(ROOT))
        for folder in ("templates", "static")
        for path in (dashboard / folder).iterdir()
    }
    assert needed
    assert needed <= packaged, needed - packaged


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
    """What the base and ``extras`` require, following extras that name others (hwlat[cli])."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = list(project["dependencies"])
    todo, seen = list(extras), set()
    while todo:
        extra = todo.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for requirement in project["optional-dependencies"][extra]:
            own = re.fullmatch(r"hwlat\[([\w,\s-]+)\]", requirement)
            if own:
                todo += [e.strip() for e in own.group(1).split(",")]
            else:
                wanted.append(requirement)
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
