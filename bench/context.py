"""What every workload receives: the running services, the size of the run, and a place for notes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bench.processes import WorkerProcess, zart_worker
from bench.services import Services


@dataclass
class BenchContext:
    services: Services
    quick: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def log_dir(self) -> Path:
        return self.services.root

    def size(self, full: int, quick: int) -> int:
        """A count for this run: the full figure, or the smoke-run one with --quick."""
        return quick if self.quick else full

    def note(self, text: str) -> None:
        """A sentence for RESULTS.md explaining how a figure was taken."""
        if text not in self.notes:
            self.notes.append(text)

    @contextmanager
    def zart_worker(self, name: str = "zart-worker", concurrency: int | None = None) -> Iterator[WorkerProcess]:
        """A `zart worker` subprocess (default settings unless `concurrency` is given) for the block."""
        services = self.services
        worker = zart_worker(services.sqlalchemy_url(), services.broker_url, self.log_dir, name, concurrency)
        with worker:
            yield worker
