"""`pip install 'hwlat[client]'` is light and enough: the README's client example, taken from
README.md, runs in a fresh venv holding only that extra, against a real service.

The venv is made with the project's uv and constrained to requirements/dev.lock (the locked
versions, from uv's cache: seconds), while the service starts. The wheel is built from a copy
of what the project packages, so that the build writes no build/ or egg-info into the work
tree while other tests build there.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from latency_api.schemas.devices import DeviceIn
from tests.fixtures.factories import HOST_DEVICE
from tests.fixtures.services import Service

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
LOCK = ROOT / "requirements" / "dev.lock"
UV = Path(sys.executable).with_name("uv")
PIXEL1 = Path(__file__).resolve().parent / "data" / "spnas_pixel1_runtime_model.json"
SPACE = "spnas-mobilenetv2-224"
# The seed's table holds the searchable blocks only; the rest of the network, in ms.
CONSTANT_MS = 19.5999
# What hwlat[client] must not bring: frameworks, the service's stack, ML, the command line.
HEAVY = {
    "numpy",
    "fastapi",
    "starlette",
    "uvicorn",
    "sqlalchemy",
    "alembic",
    "psycopg",
    "torch",
    "tensorflow",
    "tensorflow-cpu",
    "keras",
    "onnx",
    "onnxruntime",
    "ai-edge-litert",
    "scikit-learn",
    "scipy",
    "optuna",
    "matplotlib",
    "typer",
    "rich",
}
INSTALL_TIMEOUT_S = 300  # seconds with a warm uv cache; a cold one downloads pydantic-core


def readme_example(marker: str) -> str:
    """The ```python block after ``<!-- marker -->`` in README.md."""
    text = README.read_text()
    start = text.index("```python", text.index(f"<!-- {marker} -->")) + len("```python")
    return text[start : text.index("```", start)]


def substituted(code: str, replacements: dict[str, str]) -> str:
    for old, new in replacements.items():
        assert code.count(old) == 1, f"the README example no longer holds {old!r} once"
        code = code.replace(old, new)
    return code


def project_copy(dest: Path) -> Path:
    """pyproject.toml, README.md and every package pyproject.toml ships."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    include = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    dest.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, dest / name)
    for package in {pattern.rstrip("*").split(".")[0] for pattern in include}:
        ignore = shutil.ignore_patterns("__pycache__")
        shutil.copytree(ROOT / package, dest / package, ignore=ignore)
    return dest


def uv(*args: str) -> None:
    done = subprocess.run(
        [str(UV), *args], capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]


def install(python: Path, wheel: Path, extras: str) -> None:
    target = ("--python", str(python), "--constraint", str(LOCK))
    uv("pip", "install", "--quiet", *target, f"{wheel}[{extras}]")


def installed(python: Path) -> set[str]:
    listing = subprocess.run(
        [str(UV), "pip", "list", "--python", str(python), "--format", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    return {re.sub(r"[-_.]+", "-", p["name"]).lower() for p in json.loads(listing)}


def run(python: Path, script: Path, code: str) -> subprocess.CompletedProcess[str]:
    """``code`` in the venv's interpreter, isolated (-I): no PYTHONPATH, no work tree."""
    script.write_text(code)
    return subprocess.run(
        [str(python), "-I", str(script)], capture_output=True, text=True, timeout=60, check=False
    )


def numbers(line: str) -> list[float]:
    return [float(x) for x in re.findall(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?", line)]


def seed_ms(architecture: list[int]) -> float:
    """What the seed's table says: Σ of the blocks 1..20 (skip is 0 ms) + the fixed parts."""
    table: dict[str, dict[str, float]] = json.loads(PIXEL1.read_text())
    return CONSTANT_MS + sum(
        table[str(position + 1)].get(str(choice), 0.0)
        for position, choice in enumerate(architecture)
    )


def client_venv(tmp_path: Path) -> tuple[Path, Path]:
    """A fresh venv with ``hwlat[client]`` from a wheel of this tree: (python, the wheel)."""
    venv = tmp_path / "venv"
    uv("venv", "--quiet", "--python", sys.executable, str(venv))
    project = project_copy(tmp_path / "project")
    uv("build", "--quiet", "--wheel", "--out-dir", str(tmp_path / "dist"), str(project))
    (wheel,) = (tmp_path / "dist").glob("hwlat-*.whl")
    install(venv / "bin" / "python", wheel, "client")
    return venv / "bin" / "python", wheel


def test_the_readme_client_example_runs_with_only_the_client_extra(
    service: Service, tmp_path: Path
) -> None:
    with ThreadPoolExecutor(1) as pool:
        venv = pool.submit(client_venv, tmp_path)
        with service.api() as admin:
            device = admin.register_device(DeviceIn(**HOST_DEVICE)).id
            admin.import_runtime_table(
                device,
                PIXEL1.read_text(),
                space=SPACE,
                format="spnas",
                constant_ms=CONSTANT_MS,
            )
            read = admin.create_token("client-example", "read").token
        python, wheel = venv.result()
        check_the_examples(python, wheel, service.url, read, device, tmp_path)


def check_the_examples(
    python: Path, wheel: Path, url: str, token: str, device: int, tmp_path: Path
) -> None:
    packages = installed(python)
    assert {"hwlat", "httpx", "pydantic"} <= packages
    assert not packages & HEAVY, f"hwlat[client] brought {sorted(packages & HEAVY)}"

    # The console script comes along; without the cli extra it says which one, in a line.
    script = subprocess.run(
        [str(python.with_name("hwlat")), "--help"], capture_output=True, text=True, check=False
    )
    assert script.returncode == 1
    assert script.stderr.strip().splitlines() == [
        "error: the hwlat command needs the cli extra (typer is not installed): "
        "pip install 'hwlat[cli]'"
    ]

    connection = {'"http://127.0.0.1:8000"': repr(url), '"hwlat_..."': repr(token)}
    example = substituted(readme_example("client-example"), connection)
    out = run(python, tmp_path / "client_example.py", example)
    assert out.returncode == 0, out.stderr[-3000:]
    answer, from_table = out.stdout.strip().splitlines()
    # latency_ms and uncertainty_ms of the two networks, then no estimated layers.
    latency = numbers(answer)[:2]
    assert answer.endswith(" []"), answer
    assert latency == pytest.approx([seed_ms([0, 1, 4, 2] * 5), seed_ms([3] * 20)])
    assert float(from_table) == pytest.approx(latency[1])

    # local_predictor() needs NumPy, which this venv lacks: the error names the extra.
    local = substituted(
        readme_example("client-local-example"),
        {**connection, "local_predictor(1)": f"local_predictor({device})"},
    )
    out = run(python, tmp_path / "local_example.py", local)
    assert out.returncode == 1
    assert out.stderr.strip().splitlines()[-1] == (
        "ModuleNotFoundError: local_predictor() needs NumPy: pip install 'hwlat[local]'"
    )

    install(python, wheel, "local")
    assert installed(python) - packages == {"numpy"}
    out = run(python, tmp_path / "local_example.py", local)
    assert out.returncode == 0, out.stderr[-3000:]
    assert numbers(out.stdout)[:2] == pytest.approx([seed_ms([0] * 20), latency[1]])
