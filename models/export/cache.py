"""The content-addressed export cache and atomic file writes.

Layout: ``<cache dir>/exports/<sha256>.<format>`` plus ``<sha256>.json`` describing what the
file is; ``<cache dir>/locks/`` holds the lock files of conversions under way. Files only ever
appear through ``os.replace`` of a finished temporary file in the same directory, so a reader
(another worker, another process) sees a whole file or none.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from models.export.spec import ExportSpec

CACHE_ENV = "HWLAT_CACHE_DIR"


def cache_root(cache_dir: Path | str | None = None) -> Path:
    """``cache_dir``, else ``$HWLAT_CACHE_DIR``, else ``$XDG_CACHE_HOME/hwlat`` (~/.cache/hwlat)."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "hwlat"


def artifact_path(spec: ExportSpec, cache_dir: Path | str | None = None) -> Path:
    """Where the file of ``spec`` lives in the cache (whether or not it exists yet)."""
    return cache_root(cache_dir) / "exports" / f"{spec.digest()}{spec.filename_suffix}"


# Conversions in progress are serialised per file through one of this many lock files (by the
# file's digest), so the cache never holds more lock files than that.
LOCK_STRIPES = 64


@contextmanager
def converting(target: Path) -> Iterator[None]:
    """Hold the lock for producing ``target`` (an advisory lock, released when the process
    ends, however it ends). Not re-entrant: a holder must not export another file inside."""
    locks = target.parent.parent / "locks"  # beside exports/, which holds only models
    locks.mkdir(parents=True, exist_ok=True)
    stripe = int(hashlib.sha256(target.name.encode()).hexdigest(), 16) % LOCK_STRIPES
    with (locks / f"{stripe:02d}.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def metadata_path(artifact: Path) -> Path:
    return artifact.with_suffix(".json")


@contextmanager
def atomic_target(target: Path) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; move it into place only if the block succeeds."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with tmp.open("rb") as written:
            os.fsync(written.fileno())
        # mkstemp creates 0600; exported models are meant to be read by other tools and users.
        tmp.chmod(0o644)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(target: Path, text: str) -> None:
    with atomic_target(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def atomic_copy(source: Path, target: Path) -> None:
    with atomic_target(target) as tmp:
        shutil.copyfile(source, tmp)


def write_metadata(spec: ExportSpec, artifact: Path) -> None:
    atomic_write_text(metadata_path(artifact), json.dumps(spec.describe(), indent=2) + "\n")
