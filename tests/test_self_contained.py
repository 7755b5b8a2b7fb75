"""The repository explains and tests itself: no tracked file points at a path outside it.

The design document and the real device data once lived in a ``shared`` directory beside the
clone. A fresh clone then had dangling links, and benchmarks that could not find their data.
Both are in the repository now (``docs/design.md``, ``tests/data/``); this keeps it so.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# This file names the forbidden spellings in order to find them.
THIS = Path(__file__).resolve().relative_to(ROOT)

# The old homes of the design document and the data, the old name of the design document
# (now docs/design.md), and the repository root's parent (how the scripts reached them).
OUTSIDE = re.compile(
    r"\.\./shared\b|\bshared/(?:DESIGN\.md|data\b)|\bDESIGN\.md\b|\bROOT\.parent\b"
)
MARKDOWN_LINK = re.compile(r"\]\(([^)\s]+)\)")
# Path(__file__).resolve().parents[N]: N beyond the file's depth climbs out of the repository.
PARENTS = re.compile(r"__file__\)\.resolve\(\)\.parents\[(\d+)\]")


def tracked_text_files() -> dict[Path, str]:
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: nothing says which files are the repository's")
    files = {}
    for name in listed.decode().split("\0"):
        path = Path(name)
        if not name or path == THIS or not (ROOT / path).is_file():
            continue
        data = (ROOT / path).read_bytes()
        try:
            files[path] = data.decode("utf-8")
        except UnicodeDecodeError:
            continue  # images and other binaries cite no paths
    return files


def outside_references(path: Path, text: str) -> list[str]:
    """Every reference in one tracked file to a path outside the repository."""
    found = [f"{path}: {m.group(0)}" for m in OUTSIDE.finditer(text)]
    if path.suffix == ".md":
        for match in MARKDOWN_LINK.finditer(text):
            target = match.group(1).split("#", 1)[0]
            if not target or re.match(r"[a-z][a-z0-9+.-]*:", target):
                continue  # an anchor in the same page, or a URL
            resolved = (ROOT / path.parent / target).resolve()
            if not resolved.is_relative_to(ROOT):
                found.append(f"{path}: link to {target}")
    if path.suffix == ".py":
        for match in PARENTS.finditer(text):
            if int(match.group(1)) > len(path.parts) - 1:
                found.append(f"{path}: {match.group(0)}")
    return found


def test_no_tracked_file_points_outside_the_repository() -> None:
    files = tracked_text_files()
    assert Path("docs/design.md") in files
    found = [ref for path, text in files.items() for ref in outside_references(path, text)]
    assert found == []


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ("README.md", "see [`DESIGN.md`](../shared/DESIGN.md)"),
        ("docs/design.md", "samples: [data](../../elsewhere/samples.txt)"),
        ("scripts/bench_x.py", 'TABLE = ROOT.parent / "shared" / "data" / "t.json"'),
        ("scripts/bench_x.py", "ROOT = Path(__file__).resolve().parents[2]"),
        ("nas/x.py", "(``../shared/data/benchmark_model_outputs.txt``)"),
    ],
)
def test_each_way_of_pointing_outside_is_caught(path: str, text: str) -> None:
    assert outside_references(Path(path), text)


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ("docs/design.md", "[copy](../tests/data/spnas_pixel1_runtime_model.json)"),
        ("README.md", "[design](docs/design.md#3), [seed](https://github.com/x/y)"),
        ("tests/emulated_phone/fixtures.py", "ROOT = Path(__file__).resolve().parents[2]"),
    ],
)
def test_paths_inside_the_repository_pass(path: str, text: str) -> None:
    assert outside_references(Path(path), text) == []


# A script named by path or as a module; not a template such as ``scripts.bench_{name}``.
SCRIPT = re.compile(r"\bscripts[/.](\w+)(\.py|\.sh)?(?![\w{])")


def test_every_script_a_file_names_exists() -> None:
    # A docstring that sends readers to a script which is not there (it once named
    # scripts/bench_fuzz.py for what scripts/fuzz_api.py does) is a dead end.
    missing = set()
    for path, text in tracked_text_files().items():
        for match in SCRIPT.finditer(text):
            name, suffix = match.group(1), match.group(2) or ".py"
            if not (ROOT / "scripts" / (name + suffix)).is_file():
                missing.add(f"{path}: {match.group(0)}")
    assert sorted(missing) == []
