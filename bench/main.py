"""`python -m bench [--quick] [workload ...]`: start the servers, run the workloads, print and write the table.

A full run (every workload, full size) writes bench/RESULTS.md; a quick or partial run only prints, unless
--output names a file, so a smoke run never overwrites the published figures.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

from bench.context import BenchContext
from bench.report import RESULTS_PATH, Row, machine_description, results_markdown, text_table, write_results
from bench.services import running_services
from bench.workloads import WORKLOADS, load


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("workloads", nargs="*", choices=[[], *WORKLOADS], metavar="WORKLOAD",
                        help=f"any of {', '.join(WORKLOADS)} (default: all)")
    parser.add_argument("--quick", action="store_true", help="small counts: a smoke run, not figures to publish")
    parser.add_argument("--output", type=Path, default=None, help="write the results here (markdown)")
    return parser.parse_args(argv)


def run_workloads(ctx: BenchContext, names: Sequence[str]) -> list[Row]:
    """Run each workload in turn; one that fails leaves an error row and the others still run."""
    rows: list[Row] = []
    for name in names:
        print(f"== {name}", flush=True)
        started = time.monotonic()
        try:
            produced = load(name)(ctx)
        except Exception as exc:  # a broken workload must not cost the whole run's figures
            traceback.print_exc()
            first_line = (str(exc).strip().splitlines() or [""])[0]
            produced = [Row(name, "error", f"{type(exc).__name__}: {first_line}"[:160], verdict="ERROR")]
        rows += produced
        print(text_table(produced), flush=True)
        print(f"   ({time.monotonic() - started:.0f} s)", flush=True)
    return rows


def main(argv: Sequence[str] | None = None) -> list[Row]:
    args = parse_args(argv)
    names = args.workloads or list(WORKLOADS)
    full = not args.quick and names == list(WORKLOADS)
    output = args.output or (RESULTS_PATH if full else None)
    command = "python -m bench" + (" --quick" if args.quick else "") + "".join(f" {n}" for n in args.workloads)
    started = time.monotonic()
    with running_services() as services:
        ctx = BenchContext(services, quick=args.quick)
        ctx.note("Load average (1/5/15 min) at the start: " + " / ".join(f"{x:.2f}" for x in os.getloadavg()))
        rows = run_workloads(ctx, names)
        machine = machine_description(services.libpq_url(), services.broker_url)
    print(f"\n== results ({time.monotonic() - started:.0f} s)\n{text_table(rows)}")
    if output is not None:
        print(f"written to {write_results(results_markdown(rows, machine, command, ctx.notes), output)}")
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
