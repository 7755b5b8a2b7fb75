"""One metrics directory per ``hwlat serve``, shared by its workers and removed at exit."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ENV = "PROMETHEUS_MULTIPROC_DIR"


@contextmanager
def metrics_directory() -> Iterator[Path]:
    """Set PROMETHEUS_MULTIPROC_DIR for this process and its workers; clean it up after.

    A directory given in the environment is kept but emptied of metric files at start and
    at exit (prometheus-client would otherwise add the counts of a previous run); without one,
    a temporary directory is made and removed.
    """
    if "prometheus_client" in sys.modules:
        # Values would already live in memory, invisible to the other workers.
        raise RuntimeError(
            "prometheus_client was imported before the metrics directory was set up; "
            "set up metrics_directory() first"
        )
    given = os.environ.get(ENV)
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        _clear(path)
    else:
        path = Path(tempfile.mkdtemp(prefix="hwlat-metrics-"))
        os.environ[ENV] = str(path)
    try:
        yield path
    finally:
        if given:
            _clear(path)
        else:
            shutil.rmtree(path, ignore_errors=True)
            os.environ.pop(ENV, None)


def _clear(path: Path) -> None:
    for stale in path.glob("*.db"):
        stale.unlink(missing_ok=True)


def mark_worker_exited() -> None:
    """Drop this process's live gauges (its compiled predictors are gone with it)."""
    if os.environ.get(ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]
