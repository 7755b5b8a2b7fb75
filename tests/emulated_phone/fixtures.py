"""Pytest fixtures: emulated phones, and the fake ``adb`` first on PATH.

Use ``pytest_plugins = ["tests.emulated_phone.fixtures"]`` in a test module, or import the
fixtures by name.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.emulated_phone.state import HOME_ENV, MakePhones, PhoneDir, create_phone

REPO_ROOT = Path(__file__).resolve().parents[2]

__all__ = ["MakePhones", "adb_home", "benchmark_binary", "install_fake_adb", "make_phones", "phone"]


def install_fake_adb(bin_dir: Path) -> Path:
    """Write an ``adb`` wrapper that runs the emulator with this interpreter; its path."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    adb = bin_dir / "adb"
    adb.write_text(
        "#!/bin/sh\n"
        f"PYTHONPATH='{REPO_ROOT}'${{PYTHONPATH:+:$PYTHONPATH}} "
        f"exec '{sys.executable}' -m tests.emulated_phone.adb_main \"$@\"\n"
    )
    adb.chmod(adb.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return adb


@pytest.fixture
def adb_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty bus of emulated phones, with the fake adb first on PATH."""
    home = tmp_path / "emulated-adb"
    home.mkdir()
    bin_dir = install_fake_adb(tmp_path / "bin").parent
    monkeypatch.setenv(HOME_ENV, str(home))
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ.get('PATH', '')}")
    monkeypatch.delenv("ANDROID_SERIAL", raising=False)
    return home


@pytest.fixture
def make_phones(adb_home: Path) -> MakePhones:
    """``make_phones(n, props=..., **control)``: plug in n phones (serials EMU0001...)."""
    made: list[PhoneDir] = []

    def make(n: int = 1, props: dict[str, str] | None = None, **control: Any) -> list[PhoneDir]:
        new = [
            create_phone(adb_home, f"EMU{len(made) + i + 1:04d}", props, **control)
            for i in range(n)
        ]
        made.extend(new)
        return new

    return make


@pytest.fixture
def phone(make_phones: MakePhones) -> PhoneDir:
    """One emulated Pixel 7 on the bus."""
    return make_phones(1)[0]


@pytest.fixture
def benchmark_binary(tmp_path: Path) -> Path:
    """Stands in for the user's benchmark_model: only its bytes matter, since they name the
    build. They differ per test, so that each test registers devices of its own."""
    binary = tmp_path / "benchmark_model"
    binary.write_bytes(f"\x7fELF emulated benchmark_model 2.16.1 {tmp_path.name}\n".encode())
    return binary
