"""A fake ``adb`` client serving the emulated phones under ``$EMULATED_ADB_HOME``.

Run as ``python -m tests.emulated_phone.adb_main ARGS`` (the fixtures install a wrapper named
``adb`` first on PATH). It answers ``devices [-l]``, ``[-s SERIAL] shell COMMAND``,
``[-s SERIAL] push LOCAL... REMOTE``, ``get-state`` and ``version`` with real adb's output and
error messages, so that the agent under test cannot tell it from a phone on USB.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from tests.emulated_phone import sampler, shell
from tests.emulated_phone.benchmark import run_benchmark
from tests.emulated_phone.state import HOME_ENV, PhoneDir, phones, unplugged


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    home_text = os.environ.get(HOME_ENV)
    if not home_text:
        return _fail(f"adb (emulated): {HOME_ENV} is not set")
    home = Path(home_text)
    serial = os.environ.get("ANDROID_SERIAL")
    while args and args[0].startswith("-"):
        option = args.pop(0)
        if option != "-s":
            return _fail(f"adb: unknown option {option}")
        if not args:
            return _fail("adb: -s requires an argument")
        serial = args.pop(0)
    if not args:
        return _fail("adb: no command given")
    command, rest = args[0], args[1:]
    if command == "version":
        print("Android Debug Bridge version 1.0.41\nVersion 35.0.2-emulated")
        return 0
    if command in ("start-server", "kill-server"):
        return 0
    if command == "devices":
        return _devices(home, "-l" in rest)
    phone, error = _select(home, serial)
    if phone is None:
        return _fail(error, code=1)
    words: list[str] = []
    if command == "shell":
        try:
            words = shell.words(" ".join(rest))
        except ValueError:
            words = rest
    if _hangs(phone.control(), command, words):
        time.sleep(float(phone.control()["hang_s"]))
    if command == "shell":
        return _shell(phone, " ".join(rest), words)
    if command == "push":
        return _push(phone, [a for a in rest if not a.startswith("--")])
    if command == "get-state":
        print("device")
        return 0
    return _fail(f"adb: unknown command {command}")


def _devices(home: Path, long: bool) -> int:
    listed = []
    for number, phone in enumerate(phones(home) if home.is_dir() else [], start=1):
        control = phone.control()
        if _hangs(control, "devices", []):
            time.sleep(float(control["hang_s"]))
        if not unplugged(control):
            listed.append((number, phone, control["state"]))
    print("List of devices attached")
    for number, phone, state in listed:
        if not long:
            print(f"{phone.serial}\t{state}")
            continue
        props = phone.props()
        details = ""
        if state == "device":
            model = props.get("ro.product.model", "").replace(" ", "_")
            details = (
                f" product:{props.get('ro.product.name', '')} model:{model} "
                f"device:{props.get('ro.product.device', '')}"
            )
        print(f"{phone.serial:<22} {state} usb:1-{number}{details} transport_id:{number}")
    print()
    return 0


def _select(home: Path, serial: str | None) -> tuple[PhoneDir | None, str]:
    if serial is None:
        present = [p for p in phones(home) if not unplugged(p.control())] if home.is_dir() else []
        if not present:
            return None, "adb: no devices/emulators found"
        if len(present) > 1:
            return None, "adb: more than one device/emulator"
        phone = present[0]
    else:
        phone = PhoneDir(home / serial)
        if not phone.exists() or unplugged(phone.control()):
            return None, f"error: device '{serial}' not found"
    state = phone.control()["state"]
    if state == "unauthorized":
        return None, (
            "error: device unauthorized.\nThis adb server's $ADB_VENDOR_KEYS is not set\n"
            "Try 'adb kill-server' if that seems wrong.\n"
            "Otherwise check for a confirmation dialog on your device."
        )
    if state == "offline":
        return None, "error: device offline"
    return phone, ""


def _hangs(control: dict[str, Any], command: str, words: list[str]) -> bool:
    hang_on = control.get("hang_on")
    if not hang_on:
        return False
    # A shell command hangs on the program it runs (through taskset too), not on arguments
    # that merely name it, such as `chmod 755 .../benchmark_model`.
    program = words[2] if words[:1] == ["taskset"] and len(words) > 2 else "".join(words[:1])
    return hang_on in (command, os.path.basename(program))


def _shell(phone: PhoneDir, command: str, words: list[str]) -> int:
    if not command.strip():
        return _fail("adb (emulated): an interactive shell is not emulated")
    if (form := sampler.split(words)) is not None:
        return sampler.run(phone, *form, start=lambda argv, _load: _foreground(phone, argv))
    if shell.is_program(words):
        return _program(phone, words)
    output = shell.run(phone, command, phone.control())
    return _emit(output)


def _foreground(phone: PhoneDir, words: list[str]) -> int:
    """One simple command, a pushed program or a shell builtin, its output written out."""
    if shell.is_program(words):
        return _program(phone, words)
    return _emit(shell.run(phone, shlex.join(words), phone.control()))


def _program(phone: PhoneDir, words: list[str]) -> int:
    control = phone.control()
    mask: int | None = None
    if words[0] == "taskset":
        if len(words) < 3:
            return _fail("usage: taskset [-ap] [mask] [PID | cmd [args...]]")
        mask = shell.parse_mask(words[1])
        if mask is None:
            return _fail(f"taskset: bad mask '{words[1]}'")
        if not mask & shell.online_mask(control):
            return _fail("taskset: sched_setaffinity: Invalid argument")
        words = words[2:]
    program, args = words[0], words[1:]
    host, reason = shell.executable(phone, program)
    if host is None:
        prefix = "taskset: exec " if mask is not None else f"{shell.SH}: "
        return _fail(f"{prefix}{program}: {reason}", code=127 if "No such" in str(reason) else 126)

    def graph_host(path: str) -> Path | None:
        candidate = phone.host_path(path)
        return candidate if path.startswith("/") and candidate.is_file() else None

    # A burst (another app, a thermal dip) slows the listed benchmark runs (counted from 0).
    slow = control["slow_runs"]
    slowdown = float(slow["factor"]) if int(control["runs"]) in slow["runs"] else 1.0
    # The CPU time of this thread, which runs the model: what the phone's power follows.
    cpu_started = time.thread_time()
    output = run_benchmark(args, graph_host, str(control["output_form"]), slowdown)
    cpu_s = time.thread_time() - cpu_started
    with phone.locked() as state:
        state["cpu_s_done"] += cpu_s
        if output.code == 0:
            state["runs"] += 1
            state["temperature_c"] += float(state["heat_per_run_c"])
    phone.append_log(
        {
            "program": program,
            "args": args,
            "mask": None if mask is None else format(mask, "x"),
            "graph": next((a.split("=", 1)[1] for a in args if a.startswith("--graph=")), None),
            "exit_code": output.code,
            "cpu_s": cpu_s,
            "stdout": "".join(output.stdout),
            "stderr": "".join(output.stderr),
            "at": time.time(),
        }
    )
    return _emit(output)


def _push(phone: PhoneDir, args: list[str]) -> int:
    if len(args) < 2:
        return _fail("adb: push requires an argument")
    *sources, remote = args
    for source in sources:
        local = Path(source)
        if not local.is_file():
            return _fail(f"adb: error: cannot stat '{source}': No such file or directory")
        target = remote
        if remote.endswith("/") or phone.host_path(remote).is_dir():
            target = f"{remote.rstrip('/')}/{local.name}"
        if not phone.writable(target):
            return _fail(
                f"adb: error: failed to copy '{source}' to '{target}': remote couldn't create "
                "file: Read-only file system"
            )
        host = phone.host_path(target)
        if not host.parent.is_dir():
            return _fail(
                f"adb: error: failed to copy '{source}' to '{target}': remote secure_mkdirs() "
                "failed: No such file or directory"
            )
        started = time.monotonic()
        tmp = host.with_name(host.name + ".adb-push")
        shutil.copyfile(local, tmp)
        tmp.chmod(local.stat().st_mode & 0o777)
        os.replace(tmp, host)
        size, secs = local.stat().st_size, max(time.monotonic() - started, 1e-6)
        print(
            f"{source}: 1 file pushed, 0 skipped. {size / secs / 1e6:.1f} MB/s "
            f"({size} bytes in {secs:.3f}s)"
        )
    return 0


def _emit(output: shell.Output) -> int:
    if not output.stream:
        sys.stdout.write("".join(output.stdout))
        sys.stderr.write("".join(output.stderr))
    return output.code


def _fail(message: str, code: int = 1) -> int:
    print(message, file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
