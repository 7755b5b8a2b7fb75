"""Reports and logs never carry tokens: the one redaction every recorder uses, the recorders
themselves, and what is committed under docs/ (a search benchmark once printed its bearer
token into docs/benchmarks.md)."""

from __future__ import annotations

import json
import secrets
import subprocess
from pathlib import Path

import pytest

from latency_api.redaction import MASK, TOKEN, redact, redact_json
from latency_service.auth.service import TOKEN_PREFIX
from scripts import bench_env, bench_report

ROOT = Path(__file__).resolve().parents[1]


def a_token() -> str:
    """A token as the service makes them (latency_service.auth.service.create)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("bench_search --token {t} --device 1", "bench_search --token *** --device 1"),
        ("bench_search --token={t} --device 1", "bench_search --token=*** --device 1"),
        ("screenshots --token   {t}", "screenshots --token   ***"),
        ("x --admin-token {t} --db-password hunter2", "x --admin-token *** --db-password ***"),
        ("HWLAT_TOKEN={t} make bench", "HWLAT_TOKEN=*** make bench"),
        ("env PGPASSWORD=hunter2 psql", "env PGPASSWORD=*** psql"),
        ("Command: `x --token {t}`, run today.", "Command: `x --token ***`, run today."),
        ("curl -H 'Authorization: Bearer {t}' /v1", "curl -H 'Authorization: Bearer ***' /v1"),
        ("token {t} for the dashboard", "token hwlat_*** for the dashboard"),
    ],
)
def test_tokens_are_redacted_in_each_form(template: str, expected: str) -> None:
    assert redact(template.format(t=a_token())) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "postgresql+psycopg://hwlat:s3cr%40t@127.0.0.1:5432/hwlat",
            "postgresql+psycopg://hwlat:***@127.0.0.1:5432/hwlat",
        ),
        ("--storage postgresql://u:pw@db/optuna", "--storage postgresql://u:***@db/optuna"),
        ("HWLAT_DATABASE_URL=mysql://:pw@h/db", "HWLAT_DATABASE_URL=mysql://:***@h/db"),
    ],
)
def test_a_password_inside_a_url_is_redacted(url: str, expected: str) -> None:
    assert redact(url) == expected


@pytest.mark.parametrize(
    "text",
    [
        "python -m scripts.bench_search --service http://127.0.0.1:40339 --device 1",
        "postgresql+psycopg://hwlat@127.0.0.1:5432/hwlat",
        "hwlat_agent_last_seen_timestamp_seconds hwlat_http_request_duration_seconds",
        "HWLAT_TOKEN_CACHE_S=5 HWLAT_METRICS_REQUIRE_TOKEN=true --max-tokens 5",
        "send 'Authorization: Bearer <token>'; usage: --token <token>",
        "hwlat_... and hwlat_secret are placeholders",
    ],
)
def test_what_is_no_secret_is_left_as_it_was(text: str) -> None:
    assert redact(text) == text


def test_every_token_the_service_makes_is_recognised() -> None:
    # TOKEN asks for a capital letter, to spare snake_case names; a token without one would
    # leak, so check many fresh ones.
    tokens = [a_token() for _ in range(2000)]
    assert all(TOKEN.fullmatch(t) for t in tokens)
    assert redact(" ".join(tokens)) == " ".join([f"hwlat_{MASK}"] * len(tokens))


def test_redacting_twice_changes_nothing_more() -> None:
    once = redact(f"--token {a_token()} HWLAT_TOKEN={a_token()} postgresql://u:p@h/d")
    assert redact(once) == once


def test_json_is_redacted_in_every_string_and_under_every_secret_key() -> None:
    token = a_token()
    report = {
        "command": f"python -m scripts.bench_search --token {token}",
        "environment": {"HWLAT_TOKEN": "plain-secret", "cpus": 2, "load": (1.0, 2.0)},
        "runs": [{"token": "abc", "token_id": 3, "url": "postgresql://u:pw@db/x"}],
    }
    assert redact_json(report) == {
        "command": "python -m scripts.bench_search --token ***",
        "environment": {"HWLAT_TOKEN": MASK, "cpus": 2, "load": [1.0, 2.0]},
        "runs": [{"token": MASK, "token_id": 3, "url": "postgresql://u:***@db/x"}],
    }
    assert token in report["command"]  # a copy: the caller's report is left alone


def test_a_benchmark_records_its_command_line_without_the_token(tmp_path: Path) -> None:
    token = a_token()
    argv = ["--service", "http://127.0.0.1:8000", "--token", token, "--device", "1"]
    command = bench_env.command("scripts.bench_search", argv)
    assert command == (
        "python -m scripts.bench_search --service http://127.0.0.1:8000 --token *** --device 1"
    )
    out = tmp_path / "bench" / "search.json"
    bench_env.write_report(out, {"command": " ".join(argv), "output_tail": f"Bearer {token}"})
    assert token not in out.read_text()
    assert json.loads(out.read_text())["output_tail"] == "Bearer ***"


def test_the_report_pages_never_quote_a_token_from_an_old_json(tmp_path: Path) -> None:
    token = a_token()
    path = tmp_path / "search.json"
    path.write_text(json.dumps({"command": f"x --token {token}", "date": "today"}))
    data = bench_report.load_json(path)
    assert data is not None
    assert bench_report.run_line(data) == "Command: `x --token ***`, run today."


def tracked(under: str = ".") -> list[Path]:
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", under], cwd=ROOT, capture_output=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: nothing says which files are committed")
    return [ROOT / name for name in listed.decode().split("\0") if name]


def text_of(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, FileNotFoundError):
        return None  # images; a file deleted but not yet committed


def test_nothing_committed_under_docs_holds_a_secret() -> None:
    files = tracked("docs")
    assert any(p.name == "benchmarks.md" for p in files)
    found = []
    for path in files:
        text = text_of(path)
        if text is None:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if redact(line) != line:
                found.append(f"{path.relative_to(ROOT)}:{number}: {redact(line)}")
    assert found == []


def test_no_committed_file_holds_a_token() -> None:
    found = []
    for path in tracked():
        text = text_of(path)
        if text is not None and TOKEN.search(text):
            found.append(str(path.relative_to(ROOT)))
    assert found == []
