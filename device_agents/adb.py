"""A small wrapper over the ``adb`` client: every call bounded in time, every failure typed.

A phone that was unplugged, went offline or stopped answering raises :class:`DeviceLost` (a
hung call is :class:`AdbTimeout`, a subclass: a phone that does not answer is lost for the job
at hand). Any other failure raises :class:`MeasurementError` with adb's own words.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from device_agents.errors import DeviceLost, MeasurementError

DEFAULT_TIMEOUT_S: Final = 30.0
DEFAULT_PUSH_TIMEOUT_S: Final = 300.0
# After a kill, how long to wait for the pipes to close before giving up on them.
_REAP_TIMEOUT_S: Final = 5.0
_TAIL_CHARS: Final = 2000

# What adb itself (not the command run on the phone) prints when the phone is gone. Anchored at
# the start of a line so that a remote "sh: x: not found" is not mistaken for a lost phone.
_LOST_RE: Final = re.compile(
    r"^(?:adb: )?error: (?:device '[^']*' not found|device not found|device offline"
    r"|device unauthorized|device still authorizing|no devices(?:/emulators)? found"
    r"|closed|protocol fault|connection reset)",
    re.MULTILINE,
)
_GETPROP_RE: Final = re.compile(r"^\[([^\]]+)\]: \[(.*)\]$", re.DOTALL)


class AdbTimeout(DeviceLost):
    """An adb call did not finish in time; the phone is treated as lost for this job."""


class AdbUnavailable(RuntimeError):
    """The adb executable cannot be run at all: a setup problem, not a phone problem."""


@dataclass(frozen=True, slots=True)
class AdbDevice:
    """One line of ``adb devices -l``."""

    serial: str
    state: str
    fields: Mapping[str, str] = field(default_factory=dict)

    @property
    def ready(self) -> bool:
        return self.state == "device"

    @property
    def model(self) -> str | None:
        return self.fields.get("model")

    @property
    def product(self) -> str | None:
        return self.fields.get("product")

    @property
    def transport_id(self) -> str | None:
        return self.fields.get("transport_id")


@dataclass(frozen=True, slots=True)
class ShellResult:
    stdout: str
    stderr: str
    returncode: int

    @property
    def text(self) -> str:
        """Both streams: newer benchmark_model builds log to stderr, older ones to stdout."""
        return self.stdout + ("\n" if self.stdout and self.stderr else "") + self.stderr


def parse_devices(text: str) -> list[AdbDevice]:
    """Read ``adb devices -l``; daemon start-up chatter and the header are skipped."""
    devices = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("*") or line.startswith("List of devices"):
            continue
        serial, _, rest = line.partition("\t") if "\t" in line else line.partition(" ")
        words = rest.split()
        if not words:
            continue
        # The state is one word, except "no permissions (...)" on hosts without udev rules.
        state = words[0]
        if state == "no" and len(words) > 1 and words[1] == "permissions":
            state = "no permissions"
        fields = dict(w.split(":", 1) for w in words[1:] if ":" in w and not w.startswith("("))
        devices.append(AdbDevice(serial.strip(), state, fields))
    return devices


def parse_getprop(text: str) -> dict[str, str]:
    """Read ``getprop`` output (``[name]: [value]`` lines; a value may span lines)."""
    props: dict[str, str] = {}
    pending = ""
    for line in text.splitlines():
        pending = f"{pending}\n{line}" if pending else line
        if match := _GETPROP_RE.match(pending):
            props[match[1]] = match[2]
            pending = ""
        elif not pending.startswith("["):
            pending = ""
    return props


class Adb:
    """The ``adb`` client on this host; ``phone(serial)`` gives per-phone commands."""

    def __init__(
        self,
        path: str | os.PathLike[str] = "adb",
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        env: Mapping[str, str] | None = None,
    ) -> None:
        if timeout_s <= 0:
            raise ValueError(f"timeout_s={timeout_s}; must be positive")
        self.path = os.fspath(path)
        self.timeout_s = timeout_s
        self._env = dict(env) if env is not None else None

    def run(
        self, args: Sequence[str], *, timeout_s: float | None = None, serial: str | None = None
    ) -> ShellResult:
        """Run ``adb [-s serial] args``; lost phones and timeouts raise, exit codes do not."""
        limit = self.timeout_s if timeout_s is None else timeout_s
        argv = [self.path, *(["-s", serial] if serial else []), *args]
        what = f"adb {'-s ' + serial + ' ' if serial else ''}{shlex.join(args)}"
        try:
            # Its own process group, so that a timeout also ends whatever adb started.
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=self._env,
                start_new_session=True,
            )
        except OSError as error:
            raise AdbUnavailable(
                f"cannot run {self.path!r} ({error}); install Android platform-tools or pass the "
                "adb path"
            ) from error
        try:
            out, err = process.communicate(timeout=limit)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            raise AdbTimeout(
                f"{what} did not finish within {limit:g}s; the phone is not answering"
            ) from None
        result = ShellResult(_text(out), _text(err), process.returncode)
        if process.returncode != 0 and (lost := _LOST_RE.search(result.stderr)):
            raise DeviceLost(f"{what}: {lost[0].removeprefix('adb: ')}")
        return result

    def list_devices(self, timeout_s: float | None = None) -> list[AdbDevice]:
        result = self.run(["devices", "-l"], timeout_s=timeout_s)
        if result.returncode != 0:
            raise MeasurementError(f"adb devices -l failed: {_tail(result.text)}")
        return parse_devices(result.stdout)

    def phone(self, serial: str) -> AdbPhone:
        return AdbPhone(self, serial)


@dataclass(frozen=True, slots=True)
class AdbPhone:
    """Commands for one phone, by serial."""

    adb: Adb
    serial: str

    def shell(
        self, command: str, timeout_s: float | None = None, check: bool = True
    ) -> ShellResult:
        """Run ``command`` with the phone's shell; ``check`` raises on a nonzero exit."""
        result = self.adb.run(["shell", command], timeout_s=timeout_s, serial=self.serial)
        # Old devices without shell protocol v2 run the command on a pty: CRLF line ends.
        result = ShellResult(
            result.stdout.replace("\r\n", "\n"),
            result.stderr.replace("\r\n", "\n"),
            result.returncode,
        )
        if check and result.returncode != 0:
            raise MeasurementError(
                f"{self.serial}: `{command}` exited with {result.returncode}: {_tail(result.text)}"
            )
        return result

    def push(self, local: Path, remote: str, timeout_s: float | None = None) -> None:
        if not local.is_file():
            raise FileNotFoundError(f"cannot push {local}: no such file")
        limit = DEFAULT_PUSH_TIMEOUT_S if timeout_s is None else timeout_s
        result = self.adb.run(["push", str(local), remote], timeout_s=limit, serial=self.serial)
        if result.returncode != 0:
            raise MeasurementError(
                f"{self.serial}: adb push {local} {remote} failed: {_tail(result.text)}"
            )

    def getprop(self, timeout_s: float | None = None) -> dict[str, str]:
        props = parse_getprop(self.shell("getprop", timeout_s).stdout)
        if not props:
            raise MeasurementError(f"{self.serial}: getprop printed no properties")
        return props


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    try:
        process.communicate(timeout=_REAP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        # A grandchild that left the group still holds the pipes; stop waiting for it.
        process.kill()
        process.wait(_REAP_TIMEOUT_S)
        for pipe in (process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def _tail(text: str) -> str:
    text = text.strip()
    return text if len(text) <= _TAIL_CHARS else "..." + text[-_TAIL_CHARS:]
