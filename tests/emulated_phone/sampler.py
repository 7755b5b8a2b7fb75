"""The one compound command the emulated shell runs: a sampler beside a program.

``PROGRAM ARGS & while kill -0 $!; do COMMAND; ...; COMMAND; done`` starts PROGRAM in the
background and runs the loop's body over and over while it lives (``kill -0 PID`` only asks
whether the process exists), as mksh does on a phone: an agent reads the fuel gauge many times a
second on the phone itself, which no sequence of adb calls can. Here PROGRAM runs in a thread of
this process, so the gauge sees its load (:class:`tests.emulated_phone.power.Load`). When it has
exited, ``kill`` fails, as toybox's does, with ``kill: PID: No such process`` on stderr.
"""

from __future__ import annotations

import os
import shlex
import sys
import threading
from collections.abc import Callable
from typing import Final

from tests.emulated_phone import shell
from tests.emulated_phone.power import Load
from tests.emulated_phone.state import PhoneDir

_HEAD: Final = ["&", "while", "kill", "-0", "$!", ";", "do"]


def split(words: list[str]) -> tuple[list[str], list[list[str]]] | None:
    """(PROGRAM words, the body's commands) if ``words`` are the sampler form, else None."""
    if "&" not in words:
        return None
    at = words.index("&")
    program, rest = words[:at], words[at:]
    if not program or rest[: len(_HEAD)] != _HEAD or rest[-2:] != [";", "done"]:
        return None
    body: list[list[str]] = [[]]
    for word in rest[len(_HEAD) : -2]:
        if word == ";":
            body.append([])
        else:
            body[-1].append(word)
    if any(not command or any(set(w) <= set("();<>|&") for w in command) for command in body):
        return None
    return program, body


def run(
    phone: PhoneDir,
    program: list[str],
    body: list[list[str]],
    start: Callable[[list[str], Load], int],
) -> int:
    """Run ``program`` in the background through ``start`` (which runs it and returns its exit
    code) and the body while it lives; the loop's exit code, as sh reports it (0)."""
    load = Load()
    codes: list[int] = []

    def background() -> None:
        load.start()
        try:
            codes.append(start(program, load))
        finally:
            load.stop()

    worker = threading.Thread(target=background, name="background-program")
    worker.start()
    while worker.is_alive():
        for command in body:
            output = shell.run(phone, shlex.join(command), phone.control(), load=load)
            sys.stdout.write("".join(output.stdout))
            sys.stderr.write("".join(output.stderr))
            sys.stdout.flush()
    worker.join()
    # The emulated program has no pid of its own; any number stands for it.
    sys.stderr.write(f"kill: {os.getpid() + 1}: No such process\n")
    return 0
