"""Bad input and unreachable dependencies end `hwlat` with status 2 and one line, never a
traceback.

The first test runs the console script as a process: what a shell sees. The others run the same
command line in process (tests/fixtures/cli.py), which is what that process runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from hwlat import cli
from hwlat.service_process import free_port, hwlat_env, run_hwlat
from latency_api import ErrorCode, ServiceError
from models import UserInputError
from tests.fixtures.cli import invoke
from tests.fixtures.services import Service


def assert_one_line_error(out: object, *needles: str) -> None:
    returncode, stderr = out.returncode, out.stderr  # type: ignore[attr-defined]
    assert returncode == 2, stderr
    assert "Traceback" not in stderr
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_an_unknown_scope(tmp_path: Path) -> None:
    out = run_hwlat(["token", "create", "--scope", "bogus"], hwlat_env(tmp_path))
    assert_one_line_error(out, "unknown scope 'bogus'", "read, ingest, admin")


def test_an_unknown_revision(tmp_path: Path) -> None:
    out = invoke(["db", "upgrade", "nope"], hwlat_env(tmp_path))
    assert_one_line_error(out, "cannot upgrade to revision 'nope'")


@pytest.mark.parametrize(
    ("url", "needles"),
    [
        ("not a url", ("is not a usable database URL",)),
        ("mysql+nosuchdriver://u@h/db", ("is not a usable database URL",)),
        (
            "postgresql+psycopg://hwlat:s3cret@127.0.0.1:{port}/hwlat",
            ("cannot reach the database", "***"),
        ),
    ],
)
def test_a_bad_or_unreachable_database(tmp_path: Path, url: str, needles: tuple[str]) -> None:
    env = {**hwlat_env(tmp_path), "HWLAT_DATABASE_URL": url.format(port=free_port())}
    for args in (["db", "upgrade"], ["token", "create", "--scope", "read"], ["token", "list"]):
        out = invoke(args, env)
        assert_one_line_error(out, *needles)
        assert "s3cret" not in out.stderr


def test_an_unreachable_service(tmp_path: Path) -> None:
    env = {
        **hwlat_env(tmp_path),
        "HWLAT_SERVICE_URL": f"http://127.0.0.1:{free_port()}",
        "HWLAT_TOKEN": "hwlat_x",
    }
    out = invoke(["fit", "--device", "1"], env)
    assert_one_line_error(out, "does not answer", "HWLAT_SERVICE_URL")


def test_a_token_the_service_rejects(service: Service) -> None:
    unknown = invoke(["jobs", "list"], service.cli_env(token="hwlat_x"))
    assert_one_line_error(unknown, "401 not_authenticated", "hwlat token create")
    reader = service.new_token("read", "reader")
    weak = invoke(["fit", "--device", "1"], service.cli_env(token=reader))
    assert_one_line_error(weak, "403 forbidden", "'admin'")


def test_a_bad_selector_names_the_field(tmp_path: Path) -> None:
    env = {**hwlat_env(tmp_path), "HWLAT_SERVICE_URL": f"http://127.0.0.1:{free_port()}"}
    out = invoke(["jobs", "create", "--selector", "colour=blue", "--layer", "skip_hw8_i8_o8"], env)
    assert_one_line_error(out, "colour")


@pytest.mark.parametrize(
    "error",
    [UserInputError("bad --thing"), ServiceError(404, ErrorCode.not_found, "no device with id 7")],
)
def test_user_errors_are_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], error: Exception
) -> None:
    def app(**_: object) -> None:
        raise error

    monkeypatch.setattr(cli, "app", app)
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip().splitlines() == [f"error: {error}"]


@pytest.mark.parametrize("error", [ValueError("a bug"), KeyError("a bug"), RuntimeError("a bug")])
def test_any_other_error_keeps_its_traceback(
    monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    def app(**_: object) -> None:
        raise error

    monkeypatch.setattr(cli, "app", app)
    with pytest.raises(type(error)):
        cli.main()
