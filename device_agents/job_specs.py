"""Splitting a list of layers or architectures into profiling jobs (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from models import LayerKey, SearchSpace


def job_specs(
    *,
    layers: Sequence[LayerKey | str] = (),
    space: SearchSpace | None = None,
    architectures: Sequence[Sequence[int]] = (),
    chunk: int,
) -> list[dict[str, Any]]:
    """``kind`` and ``payload`` of jobs of at most ``chunk`` items: layers first, then networks.

    Small jobs bound what a lost lease throws away and let several devices share the work.
    """
    if chunk < 1:
        raise ValueError(f"chunk={chunk}; a job needs at least one item")
    keys = [str(k) for k in layers]
    specs: list[dict[str, Any]] = [
        {"kind": "profile_layers", "payload": {"layer_keys": keys[i : i + chunk]}}
        for i in range(0, len(keys), chunk)
    ]
    if len(architectures) == 0:  # len, not truth: a NumPy array of architectures is fine
        return specs
    if space is None:
        raise ValueError("architectures need the search space they index")
    rows = [[int(c) for c in arch] for arch in architectures]
    specs += [
        {
            "kind": "profile_networks",
            "payload": {"space": space.name, "architectures": rows[i : i + chunk]},
        }
        for i in range(0, len(rows), chunk)
    ]
    return specs
