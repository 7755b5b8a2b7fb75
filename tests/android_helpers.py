"""Shared by the Android agent tests: layer keys, fast settings, a backend for a phone."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from device_agents.android import AndroidBackend
from device_agents.runners import Timing
from latency_api.schemas.jobs import JobIn, JobTiming, ProfileLayers
from tests.emulated_phone.state import PhoneDir

# Layer variants of the tiny-64 space; small enough to export and run in a blink.
KEYS = [
    "mbconv_hw32_i8_o16_k3_e3_s2",
    "mbconv_hw16_i16_o16_k5_e6_s1",
    "mbconv_hw8_i24_o24_k3_e6_s1",
    "mbconv_hw32_i8_o16_k5_e3_s2",
    "mbconv_hw16_i16_o24_k3_e3_s2",
    "mbconv_hw8_i24_o24_k5_e3_s1",
]
FAST = Timing(warmup_runs=2, num_runs=5)
# benchmark_model warms up for at least 0.5 s by default; tests have no time for that.
NO_WARMUP_FLOOR = ("--warmup_min_secs=0",)


def android(phone: PhoneDir, binary: Path, **options: Any) -> AndroidBackend:
    options.setdefault("extra_flags", NO_WARMUP_FLOOR)
    return AndroidBackend(phone.serial, binary, **options)


def printed_statistics(entry: dict[str, Any]) -> dict[str, float]:
    """The timed phase's statistics line as the phone printed it (µs), read by a plain regex
    rather than the agent's parser, so that comparing with it tests the parser too."""
    lines = [ln for ln in (entry["stdout"] + entry["stderr"]).splitlines() if "count=" in ln]
    printed = {k: float(v) for k, v in re.findall(r"(\w+)=([-+.\deE]+)", lines[-1])}
    if "(all same)" in lines[-1]:
        # TFLite's Stat prints only count and curr when every run took the same microseconds
        # (a tiny layer on a quiet phone): that value is the min, the max and the mean.
        printed |= {k: printed["curr"] for k in ("min", "max", "avg") if k not in printed}
    return printed


def layer_job(device_id: int, keys: list[str], **extra: Any) -> JobIn:
    return JobIn(
        device_id=device_id,
        payload=ProfileLayers(layer_keys=keys),
        timing=JobTiming(warmup_runs=2, num_runs=5),
        **extra,
    )
