"""Run ONNX Runtime on another x86 CPU than this machine's: QEMU's user-mode emulator.

ONNX Runtime picks its integer kernels from the instruction sets CPUID reports (VNNI,
AVX-512, AVX2), so an int8 model can compute differently on another CPU. ``qemu-x86_64 -cpu
MODEL`` runs this interpreter with the CPUID of MODEL and emulates its instructions: on an
AVX-512/VNNI host, ``EPYC-Rome-v1`` gives an AMD EPYC with AVX2 and neither AVX-512 nor VNNI,
the kind of CPU where an int8 test once failed (QEMU 7.2 emulates AVX2, not AVX-512).

``python -m tests.emulated_cpu PLAN.json`` (run under the emulator) runs the models the plan
names on their inputs, and writes their outputs and the CPU features NumPy detected, so the
caller can check that the emulated CPU is the one asked for. scripts/ensure_test_tools.sh
installs QEMU.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

QEMU = "qemu-x86_64"
# CPUs without VNNI, where ONNX Runtime's u8 x s8 kernel saturates: AMD and Intel, AVX2 only.
NO_VNNI_CPUS = ("EPYC-Rome-v1", "Haswell-v4")
# What NumPy's runtime dispatch must (not) see for the emulation to be what it claims.
REQUIRED_FEATURES = ("AVX2",)
ABSENT_FEATURES = ("AVX512F", "AVX512VNNI")


def qemu() -> str:
    """The emulator's path; a clear error naming the install step when it is missing."""
    found = shutil.which(QEMU)
    if found is None:
        raise RuntimeError(
            f"{QEMU} is not installed; the int8 tests run ONNX Runtime on emulated CPUs without "
            "VNNI. `make test` installs it (scripts/ensure_test_tools.sh), or: "
            "sudo apt-get install -y qemu-user"
        )
    return found


def run_onnx_on(
    cpu: str, runs: Sequence[tuple[Path, npt.NDArray[np.float32]]], workdir: Path
) -> tuple[list[npt.NDArray[np.float32]], dict[str, bool]]:
    """Each model's output for its input, computed on the emulated ``cpu`` in one process (an
    emulated interpreter takes a second or two to start), and the CPU features NumPy detected
    there."""
    workdir.mkdir(parents=True, exist_ok=True)
    plan = workdir / f"plan-{cpu}.json"
    steps = []
    for n, (model, x) in enumerate(runs):
        inputs, outputs = workdir / f"{cpu}-{n}.in.npy", workdir / f"{cpu}-{n}.out.npy"
        np.save(inputs, x)
        steps.append({"model": str(model), "input": str(inputs), "output": str(outputs)})
    features_path = workdir / f"features-{cpu}.json"
    plan.write_text(json.dumps({"steps": steps, "features": str(features_path)}))
    repo = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [qemu(), "-cpu", cpu, sys.executable, "-m", "tests.emulated_cpu", str(plan)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=repo,
        check=False,
    )
    if done.returncode != 0:
        errors = [line for line in done.stderr.splitlines() if "TCG doesn't support" not in line]
        raise RuntimeError(f"ONNX Runtime on emulated {cpu} failed:\n" + "\n".join(errors[-20:]))
    features: dict[str, bool] = json.loads(features_path.read_text())
    return [np.load(step["output"]) for step in steps], features


def host_has_vnni() -> bool:
    """Whether this machine's CPU has the int8 dot-product instructions the emulated CPUs
    lack (AVX512-VNNI or AVX-VNNI): the tests run on machines of both kinds."""
    try:
        flags = {
            flag
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("flags")
            for flag in line.split(":", 1)[1].split()
        }
    except OSError:
        flags = set()
    return bool({"avx512_vnni", "avx_vnni"} & flags) or _cpu_features().get("AVX512VNNI", False)


def _cpu_features() -> dict[str, bool]:
    from numpy._core._multiarray_umath import __cpu_features__

    return {name: bool(value) for name, value in __cpu_features__.items()}


def main(plan_path: str) -> None:
    import onnxruntime as ort

    plan = json.loads(Path(plan_path).read_text())
    options = ort.SessionOptions()
    options.log_severity_level = 3
    for step in plan["steps"]:
        session = ort.InferenceSession(step["model"], options, providers=["CPUExecutionProvider"])
        (out,) = session.run(None, {"input": np.load(step["input"])})
        np.save(step["output"], np.asarray(out))
    Path(plan["features"]).write_text(json.dumps(_cpu_features()))


if __name__ == "__main__":
    main(sys.argv[1])
