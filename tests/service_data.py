"""Valid request bodies for the service tests."""

from __future__ import annotations

from typing import Any

HOST_DEVICE: dict[str, Any] = {
    "name": "ci-host",
    "kind": "host",
    "model": "x86_64 test box",
    "runtime": "litert",
    "runtime_version": "2.3.0",
    "delegate": "xnnpack",
    "threads": 1,
    "precision": "fp32",
}

LAYER_KEYS = [
    "mbconv_hw112_i16_o24_k3_e3_s2",
    "mbconv_hw56_i24_o24_k5_e6_s1",
    "mbconv_hw56_i24_o40_k5_e6_s2",
]


def layer_measurement(
    key: str = LAYER_KEYS[0], median_ms: float = 1.0, **over: Any
) -> dict[str, Any]:
    body = {
        "layer_key": key,
        "count": 30,
        "median_ms": median_ms,
        "mean_ms": median_ms * 1.01,
        "std_ms": median_ms * 0.02,
        "min_ms": median_ms * 0.95,
        "max_ms": median_ms * 1.2,
        "p90_ms": median_ms * 1.05,
        "temp_before_c": 40.0,
        "temp_after_c": 41.5,
        "agent_version": "test",
        "tool_version": "ai-edge-litert 2.3.0",
    }
    body.update(over)
    return body


def network_measurement(
    architecture: list[int],
    median_ms: float = 4.0,
    space: str = "spnas-mobilenetv2-224",
    **over: Any,
) -> dict[str, Any]:
    body = layer_measurement(median_ms=median_ms, **over)
    del body["layer_key"]
    body.update(space=space, architecture=architecture)
    return body
