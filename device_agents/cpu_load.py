"""How busy the machine is, from /proc/stat: other processes' share and the hypervisor's steal.

Read as two snapshots around a piece of work (no sleeping), so it can accompany every timing
window; the work's own CPU time is subtracted, so what remains busy is someone else.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

PROC_STAT = Path("/proc/stat")


@dataclass(frozen=True, slots=True)
class CpuSnapshot:
    busy_ticks: int  # user + nice + system + irq + softirq (+ guest), every CPU
    steal_ticks: int
    total_ticks: int
    own_s: float  # this process's user + system CPU time

    @classmethod
    def take(cls) -> CpuSnapshot | None:
        """None where /proc/stat cannot be read (not Linux, a sandbox)."""
        try:
            fields = PROC_STAT.read_text().splitlines()[0].split()[1:]
            values = [int(v) for v in fields[:8]]
        except (OSError, IndexError, ValueError):
            return None
        if len(values) < 8:
            return None
        idle = values[3] + values[4]  # idle + iowait
        steal = values[7]
        own = os.times()
        return cls(
            busy_ticks=sum(values) - idle - steal,
            steal_ticks=steal,
            total_ticks=sum(values),
            own_s=own.user + own.system,
        )


@dataclass(frozen=True, slots=True)
class CpuShares:
    other: float  # share of all CPU time used by other processes
    steal: float  # share stolen by the hypervisor for other guests


def shares(before: CpuSnapshot | None, after: CpuSnapshot | None) -> CpuShares | None:
    """The shares between two snapshots; None when unknown or too short to tell (< 1 tick)."""
    if before is None or after is None:
        return None
    total = after.total_ticks - before.total_ticks
    if total <= 0:
        return None
    own_ticks = (after.own_s - before.own_s) * os.sysconf("SC_CLK_TCK")
    other = max(0.0, (after.busy_ticks - before.busy_ticks) - own_ticks) / total
    return CpuShares(other=min(1.0, other), steal=(after.steal_ticks - before.steal_ticks) / total)


def other_cpu_fraction(interval_s: float = 0.25) -> float | None:
    """Other processes' share of the machine's CPU time over ``interval_s`` (this process
    sleeps meanwhile)."""
    before = CpuSnapshot.take()
    time.sleep(interval_s)
    measured = shares(before, CpuSnapshot.take())
    return None if measured is None else measured.other
