"""The emulated phone's shell: the commands a profiling agent runs, answered as Android does.

Supported: ``getprop [NAME]``, ``dumpsys battery``, ``cat FILES``, ``grep [-Hhs] PATTERN FILES``,
``ls``, ``chmod MODE FILES``, ``rm [-f] [-r] FILES``, ``mkdir [-p] DIRS``, ``echo``, ``true``,
``sleep SECONDS``, ``su -c COMMAND`` (root, when the phone is rooted), and ``taskset MASK PROGRAM
ARGS`` (or the program alone), where a pushed executable runs as benchmark_model. Globs expand
against the phone's files. Anything else fails the way mksh does, and compound commands (``;``,
``|``, ``&&``, redirections) are refused loudly, so an agent cannot come to depend on something
this phone does not emulate, with one exception: the on-phone sampler
``PROGRAM & while kill -0 $!; do COMMAND; ...; done`` (:mod:`tests.emulated_phone.sampler`).
"""

from __future__ import annotations

import re
import shlex
import shutil
import stat
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TextIO

from tests.emulated_phone.power import IDLE, Load
from tests.emulated_phone.state import PhoneDir, sysfs, sysfs_glob

SH: Final = "/system/bin/sh"
_OPERATORS: Final = frozenset("();<>|&")


@dataclass
class Output:
    """What a command printed; ``stream`` also writes it out at once, as a running program
    does (a hung or killed benchmark leaves its partial output behind)."""

    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)
    code: int = 0
    stream: bool = False

    def out(self, line: str) -> None:
        self._write(self.stdout, sys.stdout, line + "\n")

    def err(self, line: str) -> None:
        self._write(self.stderr, sys.stderr, line + "\n")

    def _write(self, kept: list[str], handle: TextIO, text: str) -> None:
        kept.append(text)
        if self.stream:
            handle.write(text)
            handle.flush()


@dataclass(frozen=True)
class Context:
    phone: PhoneDir
    control: dict[str, Any]
    files: dict[str, str | None]
    root: bool = False


def words(command: str) -> list[str]:
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    return list(lexer)


def run(
    phone: PhoneDir,
    command: str,
    control: dict[str, Any],
    *,
    root: bool = False,
    load: Load = IDLE,
) -> Output:
    """Run one shell command line on the phone (benchmark runs are handled by the caller);
    ``root`` as under ``su``, ``load`` a benchmark this process runs meanwhile."""
    result = Output()
    try:
        argv = words(command)
    except ValueError as error:
        result.err(f"{SH}: syntax error: {error}")
        result.code = 2
        return result
    if any(set(w) <= _OPERATORS for w in argv):
        result.err(f"{SH}: emulated phone: compound commands are not emulated: {command!r}")
        result.code = 2
        return result
    files = sysfs(control, root, load)
    argv = [argv[0], *_expand(phone, files, argv[1:])] if argv else argv
    if not argv:
        return result
    name, args = argv[0], argv[1:]
    handler = _COMMANDS.get(name)
    if handler is None:
        result.err(f"{SH}: {name}: inaccessible or not found")
        result.code = 127
        return result
    handler(Context(phone, control, files, root), args, result)
    return result


def _expand(phone: PhoneDir, files: dict[str, str | None], args: list[str]) -> list[str]:
    expanded: list[str] = []
    for arg in args:
        if not any(c in arg for c in "*?[") or arg.startswith("-"):
            expanded.append(arg)
            continue
        matches = sysfs_glob(files, arg) if arg.startswith("/sys/") else _storage_glob(phone, arg)
        # sh passes a pattern that matches nothing on unchanged.
        expanded += matches or [arg]
    return expanded


def _storage_glob(phone: PhoneDir, pattern: str) -> list[str]:
    root = phone.fs
    return sorted("/" + str(p.relative_to(root)) for p in root.glob(pattern.lstrip("/")))


def read(phone: PhoneDir, files: dict[str, str | None], path: str) -> str:
    """A file's content; OSError as the phone would raise it."""
    if path in files:
        content = files[path]
        if content is None:
            raise PermissionError("Permission denied")
        return content + "\n"
    host = phone.host_path(path)
    if host.is_dir():
        raise IsADirectoryError("Is a directory")
    if not host.is_file():
        raise FileNotFoundError("No such file or directory")
    return host.read_text(errors="replace")


def _getprop(ctx: Context, args: list[str], out: Output) -> None:
    props = ctx.phone.props()
    if args:
        out.out(props.get(args[0], ""))
        return
    for name in sorted(props):
        out.out(f"[{name}]: [{props[name]}]")


def _dumpsys(ctx: Context, args: list[str], out: Output) -> None:
    if args != ["battery"]:
        out.err(f"emulated phone: only `dumpsys battery` is emulated, not {args}")
        out.code = 1
        return
    temp = float(ctx.control["temperature_c"]) + float(ctx.control["battery_offset_c"])
    charging = bool(ctx.control["power"]["charging"])
    for line in (
        "Current Battery Service state:",
        "  AC powered: false",
        f"  USB powered: {str(charging).lower()}",
        "  Wireless powered: false",
        "  Max charging current: 500000",
        "  Max charging voltage: 5000000",
        "  Charge counter: 3619000",
        f"  status: {2 if charging else 3}",  # BatteryManager: 2 charging, 3 discharging
        "  health: 2",
        "  present: true",
        "  level: 87",
        "  scale: 100",
        "  voltage: 4211",
        f"  temperature: {round(temp * 10)}",
        "  technology: Li-ion",
    ):
        out.out(line)


def _cat(ctx: Context, args: list[str], out: Output) -> None:
    for path in args:
        try:
            out.stdout.append(read(ctx.phone, ctx.files, path))
        except OSError as error:
            out.err(f"cat: {path}: {error.args[0]}")
            out.code = 1


def _grep(ctx: Context, args: list[str], out: Output) -> None:
    flags = ""
    while args and args[0].startswith("-") and len(args[0]) > 1:
        flags += args.pop(0)[1:]
    if not args or set(flags) - set("Hhs"):
        out.err("grep: emulated phone: usage: grep [-Hhs] PATTERN FILE...")
        out.code = 2
        return
    pattern, paths = re.compile(args[0]), args[1:]
    named = "H" in flags or (len(paths) > 1 and "h" not in flags)
    matched = failed = False
    for path in paths:
        try:
            content = read(ctx.phone, ctx.files, path)
        except OSError as error:
            failed = True
            if "s" not in flags:
                out.err(f"grep: {path}: {error.args[0]}")
            continue
        for line in content.splitlines():
            if pattern.search(line):
                matched = True
                out.out(f"{path}:{line}" if named else line)
    out.code = 2 if failed else 0 if matched else 1


def _ls(ctx: Context, args: list[str], out: Output) -> None:
    for path in [a for a in args if not a.startswith("-")] or ["/data/local/tmp"]:
        host = ctx.phone.host_path(path)
        if path in ctx.files:
            out.out(path)
        elif host.is_dir():
            for child in sorted(host.iterdir()):
                out.out(child.name)
        elif host.exists():
            out.out(path)
        else:
            out.err(f"ls: {path}: No such file or directory")
            out.code = 1


def _chmod(ctx: Context, args: list[str], out: Output) -> None:
    if len(args) < 2 or not re.fullmatch(r"[0-7]{3,4}", args[0]):
        out.err("chmod: emulated phone: usage: chmod OCTAL_MODE FILE...")
        out.code = 1
        return
    mode = int(args[0], 8)
    for path in args[1:]:
        host = ctx.phone.host_path(path)
        if not ctx.phone.writable(path):
            out.err(f"chmod: {path}: Read-only file system")
            out.code = 1
        elif not host.exists():
            out.err(f"chmod: {path}: No such file or directory")
            out.code = 1
        else:
            host.chmod(mode)


def _rm(ctx: Context, args: list[str], out: Output) -> None:
    flags = "".join(a[1:] for a in args if a.startswith("-"))
    for path in [a for a in args if not a.startswith("-")]:
        host = ctx.phone.host_path(path)
        if not ctx.phone.writable(path) or path.rstrip("/") in ("/data/local/tmp", "/sdcard"):
            out.err(f"rm: {path}: Permission denied")
            out.code = 1
        elif host.is_dir() and "r" in flags:
            shutil.rmtree(host)
        elif host.is_dir():
            out.err(f"rm: {path}: Is a directory")
            out.code = 1
        elif host.exists():
            host.unlink()
        elif "f" not in flags:
            out.err(f"rm: {path}: No such file or directory")
            out.code = 1


def _mkdir(ctx: Context, args: list[str], out: Output) -> None:
    parents = "-p" in args
    for path in [a for a in args if not a.startswith("-")]:
        if not ctx.phone.writable(path):
            out.err(f"mkdir: '{path}': Permission denied")
            out.code = 1
            continue
        try:
            ctx.phone.host_path(path).mkdir(parents=parents, exist_ok=parents)
        except OSError as error:
            out.err(f"mkdir: '{path}': {error.strerror}")
            out.code = 1


def _echo(ctx: Context, args: list[str], out: Output) -> None:
    out.out(" ".join(args))


def _true(ctx: Context, args: list[str], out: Output) -> None:
    pass


def _sleep(ctx: Context, args: list[str], out: Output) -> None:
    try:
        (seconds,) = (float(a) for a in args)
    except ValueError:
        out.err(f"sleep: emulated phone: usage: sleep SECONDS, not {args}")
        out.code = 1
        return
    time.sleep(seconds)


def _su(ctx: Context, args: list[str], out: Output) -> None:
    """``su -c COMMAND`` as Magisk's su takes it; absent on an unrooted user build."""
    if not ctx.control["power"]["rooted"]:
        out.err(f"{SH}: su: inaccessible or not found")
        out.code = 127
        return
    if len(args) != 2 or args[0] != "-c":
        out.err("su: emulated phone: usage: su -c COMMAND")
        out.code = 2
        return
    inner = run(ctx.phone, args[1], ctx.control, root=True)
    out.stdout += inner.stdout
    out.stderr += inner.stderr
    out.code = inner.code


def executable(phone: PhoneDir, path: str) -> tuple[Path | None, str | None]:
    """The pushed program at ``path``, or the reason it cannot be run (as exec reports it)."""
    host = phone.host_path(path)
    if not path.startswith("/") or not host.is_file():
        return None, "No such file or directory"
    if not host.stat().st_mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH):
        return None, "Permission denied"
    return host, None


def is_program(argv: list[str]) -> bool:
    """Whether the command line runs a pushed program (directly or through taskset)."""
    return bool(argv) and (argv[0] == "taskset" or argv[0].startswith("/"))


def online_mask(control: dict[str, Any]) -> int:
    return (1 << len(control["cpus"])) - 1


def parse_mask(text: str) -> int | None:
    try:
        return int(text, 16)
    except ValueError:
        return None


_COMMANDS: Final = {
    "getprop": _getprop,
    "dumpsys": _dumpsys,
    "cat": _cat,
    "grep": _grep,
    "ls": _ls,
    "chmod": _chmod,
    "rm": _rm,
    "mkdir": _mkdir,
    "echo": _echo,
    "true": _true,
    "sleep": _sleep,
    "su": _su,
}
