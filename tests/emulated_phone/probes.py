"""Looking at the host from a test: processes the emulated phones left behind."""

from __future__ import annotations

import os
from pathlib import Path

from tests.emulated_phone.state import HOME_ENV


def processes_serving(home: Path) -> list[int]:
    """Live processes whose environment points at this emulated bus (a hung adb not killed)."""
    needle = f"{HOME_ENV}={home}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().split(") ", 1)[1][0]
        except (OSError, IndexError):
            continue
        if needle in environ.split(b"\0") and state != "Z":
            found.append(int(entry.name))
    return found
