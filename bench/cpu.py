"""CPU time spent by everything a benchmark run started, read from /proc.

On a shared machine a wall-clock rate depends on the neighbours; the CPU a workload costs per execution much
less so, and it tells what rate the machine could reach on its own (cores × 1000 / CPU ms per execution).
The footprint is this process (with DBOS's and the clients' threads), its descendants (workers and their
pool processes, Redis) and the PostgreSQL server's processes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ProcStat:
    ppid: int
    pgrp: int
    cpu_ticks: int


def proc_stats() -> dict[int, ProcStat]:
    """Parent, process group and user+system ticks of every process still readable."""
    stats = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2 :].split()  # after the command name: state, ppid, pgrp, ...
        # utime + stime, and cutime + cstime: what its children that have exited (and been waited for) used,
        # so a Postgres backend or a pool process that ends inside a measured block is still counted
        ticks = int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
        stats[int(entry.name)] = ProcStat(int(fields[1]), int(fields[2]), ticks)
    return stats


def descendants(stats: dict[int, ProcStat], roots: set[int]) -> set[int]:
    found, frontier = set(roots), list(roots)
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, stat in stats.items() if stat.ppid == parent and pid not in found]
        found.update(children)
        frontier.extend(children)
    return found & stats.keys()


def postmaster_pid(data_dir: Path) -> int:
    return int((data_dir / "postmaster.pid").read_text().split()[0])


@dataclass
class CpuMeter:
    """`with meter: ...` then `meter.seconds`: CPU the footprint used inside the block."""

    postgres_data_dir: Path
    seconds: float = 0.0
    _start: dict[int, int] = field(default_factory=dict)

    def _snapshot(self) -> dict[int, int]:
        stats = proc_stats()
        pids = descendants(stats, {os.getpid(), postmaster_pid(self.postgres_data_dir)})
        return {pid: stats[pid].cpu_ticks for pid in pids}

    def __enter__(self) -> CpuMeter:
        self._start = self._snapshot()
        return self

    def __exit__(self, *_: object) -> None:
        end = self._snapshot()
        # totals, not per process: a process that exits moves its time into its parent's children's time
        self.seconds = (sum(end.values()) - sum(self._start.values())) / TICKS
