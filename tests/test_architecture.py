"""The shape of the code: what each entry point loads, checked in fresh interpreters.

The import-linter contracts in pyproject.toml (run by `make test`) fix the direction between
packages; these tests fix what a process actually loads.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

HEAVY = ("fastapi", "starlette", "sqlalchemy", "alembic", "tensorflow", "keras", "torch", "onnx")


def modules_after(code: str) -> set[str]:
    """Every module a fresh interpreter has loaded after running ``code``."""
    script = code + "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False, timeout=120
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def loaded_after(code: str) -> set[str]:
    """Top-level packages a fresh interpreter has loaded after running ``code``."""
    return {name.split(".")[0] for name in modules_after(code)}


def test_the_client_imports_with_only_httpx_and_pydantic_installed() -> None:
    # Everything else a real install would lack is refused, as if it were not there.
    allowed = {
        "latency_api",
        "models",
        "predictor",
        "httpx",
        "httpcore",
        "h11",
        "anyio",
        "sniffio",
        "certifi",
        "idna",
        "pydantic",
        "pydantic_core",
        "typing_extensions",
        "annotated_types",
        "typing_inspection",
    }
    code = textwrap.dedent(
        f"""
        import sys
        ALLOWED = {sorted(allowed)!r}

        class OnlyTheseInstalled:
            def find_spec(self, name, path=None, target=None):
                top = name.split(".")[0]
                stdlib = top in sys.stdlib_module_names or top.startswith("_sysconfigdata")
                if stdlib or top in ALLOWED:
                    return None
                raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)

        sys.meta_path.insert(0, OnlyTheseInstalled())
        from latency_api import HwlatClient
        from latency_api.ofa import HwlatLatencyTable
        from latency_api.schemas import devices, jobs, measurements, predictors, tokens
        from latency_api.schemas import validations
        client = HwlatClient("http://127.0.0.1:1", "token")
        client.close()
        """
    )
    modules = modules_after(code)
    loaded = {name.split(".")[0] for name in modules}
    assert not loaded & {*HEAVY, "numpy", "device_agents", "latency_service"}
    # Of the runtime model, only its pure modules shared with the service: the calibration
    # formula, the metrics' names and the channel cost's form (plain data, no NumPy).
    assert {m for m in modules if m.split(".")[0] == "predictor"} <= {
        "predictor",
        "predictor.calibration",
        "predictor.channel_cost",
        "predictor.metrics",
    }


def test_the_pure_predictor_code_needs_neither_fastapi_nor_sqlalchemy() -> None:
    loaded = loaded_after(
        "import predictor.artifact, predictor.compiled, predictor.fitting, predictor.formats\n"
        "import predictor.local, predictor.accuracy, predictor.baselines"
    )
    assert "numpy" in loaded
    assert not loaded & {"fastapi", "starlette", "sqlalchemy", "httpx", "latency_service"}


def test_serving_loads_neither_agents_nor_converters() -> None:
    modules = modules_after(
        "from hwlat.cli import app\n"
        "from latency_service.app import create_app\n"
        "from latency_service.settings import Settings\n"
        "create_app(Settings(database_url='sqlite://'))"
    )
    loaded = {name.split(".")[0] for name in modules}
    assert {"fastapi", "sqlalchemy"} <= loaded
    assert not loaded & {"device_agents", "nas", "tensorflow", "keras", "torch", "onnx"}
    assert not {m for m in modules if m.startswith("models.export")}
