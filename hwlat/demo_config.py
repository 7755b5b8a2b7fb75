"""What ``hwlat demo`` runs, and its defaults: read by the command line without loading the
demo's code."""

from __future__ import annotations

from dataclasses import dataclass

from models import DEFAULT_SPACE


@dataclass(frozen=True)
class DemoConfig:
    """What ``hwlat demo`` runs (its command-line options)."""

    space: str = DEFAULT_SPACE
    n_validate: int = 200
    n_calibrate: int = 50
    repeats: int = 3
    num_runs: int = 50
    network_runs: int = 15
    seed: int = 0
    max_busy_fraction: float | None = 0.3
    gate: bool = True
    # The search that closes the loop: Single-Path NAS to a target inside the space's range
    # (its middle unless given), the architecture found measured on the device.
    search: bool = True
    search_target_ms: float | None = None
    search_epochs: int = 4
    search_resolution: int = 16
