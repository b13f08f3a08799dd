"""The results table: each zart figure beside its baseline, the ratio, the target and PASS/MISS.

The same table is printed and written, with the machine's description and the date, to bench/RESULTS.md.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import psycopg
import redis

from bench.processes import REPO

RESULTS_PATH = REPO / "bench" / "RESULTS.md"
COLUMNS = ("workload", "measure", "figure", "baseline", "ratio", "target", "verdict")
NOT_MEASURED = "not measured"


@dataclass(frozen=True)
class Row:
    workload: str
    measure: str
    figure: str
    baseline: str = ""
    ratio: str = ""
    target: str = ""
    verdict: str = ""

    def cells(self) -> tuple[str, ...]:
        return (self.workload, self.measure, self.figure, self.baseline, self.ratio, self.target, self.verdict)


def ms(value: float) -> str:
    return f"{value:.2f} ms" if value < 10 else f"{value:.1f} ms"


def per_second(value: float) -> str:
    return f"{value:,.0f}/s"


def p50_p99(p50: float, p99: float) -> str:
    return f"p50 {ms(p50)} · p99 {ms(p99)}"


def times(ratio: float) -> str:
    return f"{ratio:.2f}×"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def markdown_table(rows: Sequence[Row]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(cell or "—" for cell in row.cells()) + " |" for row in rows]
    return "\n".join(lines)


def text_table(rows: Sequence[Row]) -> str:
    """Aligned plain text for the terminal."""
    cells = [COLUMNS, *(tuple(cell or "—" for cell in row.cells()) for row in rows)]
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
    rendered = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)) for line in cells]
    rendered.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(line.rstrip() for line in rendered)


def machine_description(postgres_url: str, redis_url: str) -> dict[str, str]:
    """What the figures depend on: CPUs, memory, server and runtime versions, and when they were taken."""
    with psycopg.connect(postgres_url) as conn:
        postgres = str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
        fsync = str(conn.execute("SHOW fsync").fetchone()[0])  # type: ignore[index]
    redis_version = str(redis.Redis.from_url(redis_url).info("server")["redis_version"])
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus (nproc)": str(os.cpu_count()),
        "cpu model": _cpu_model(),
        "memory": f"{_memory_gib():.1f} GiB",
        "kernel": platform.release(),
        "load average (1/5/15 min) at the end": " / ".join(f"{load:.2f}" for load in os.getloadavg()),
        "python": platform.python_version(),
        "postgresql": f"{postgres} (fsync={fsync}, TCP on 127.0.0.1)",
        "redis": redis_version,
        "celery": _version("celery"),
        "dbos": _version("dbos"),
        "zart commit": _git_commit(),
    }


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def results_markdown(rows: Sequence[Row], machine: dict[str, str], command: str, notes: Sequence[str]) -> str:
    parts = [
        "# zart benchmark results",
        "",
        f"Written by `{command}`. Figures are medians or percentiles of repeated samples on a noisy machine;",
        "read the ratios more than the absolute numbers.",
        "",
        markdown_table(rows),
        "",
        "## Machine",
        "",
        *[f"- {key}: {value}" for key, value in machine.items()],
    ]
    if notes:
        parts += ["", "## Notes", "", *[f"- {note}" for note in notes]]
    return "\n".join(parts) + "\n"


def write_results(text: str, path: Path = RESULTS_PATH) -> Path:
    path.write_text(text)
    return path


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 1024 / 1024
    return 0.0


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=5, check=True
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
