"""Benchmark parallelism within one batch: accepted tasks per hour with 1 and 2 task slots.

    .venv/bin/python -m bench.concurrency [--seeds all --per-seed 3 --slots 1,2 --repeat 3 --json]

Each slot count runs the same batch (same seeds and batch seed, so the same candidates) in a
fresh process with `ThreadPoolTaskRunner(max_workers=slots)`, every build forced to run
(`PREFECT_TASKS_REFRESH_CACHE=true`, results and bundles in a temporary folder). The clock
runs from the flow's first progress event to its return, so process start, imports and the
ephemeral Prefect server are left out: they do not depend on the slot count. Slow imports the
first candidate would pay (Great Expectations) are warmed up before the clock starts.

Slot counts take turns (1, 2, 1, 2, ...) `--repeat` times, so a burst of load elsewhere on
the machine hits both alike; each slot count's figure is the median of its runs. Prints
accepted tasks per hour per slot count and the speedup of the largest slot count over 1
slot against the target (>= 1.6x with 2 slots on a 2-core machine). Benchmarks report,
they do not gate: exit code 0 unless a batch fails (1) or the arguments are bad (2).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

TARGET_SPEEDUP = 1.6
EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
err = Console(stderr=True)


def run_child(args: argparse.Namespace) -> dict[str, Any]:
    """One batch in this process; what the parent reads from its stdout."""
    from sandforge.commands.output import prefect_defaults

    prefect_defaults()
    import sandforge.validators.expectations  # noqa: F401  warm-up: GX imports in seconds
    from prefect.task_runners import ThreadPoolTaskRunner
    from sandforge.flows.generate_batch import generate_batch

    from sandforge.progress import listen

    marks: dict[str, float] = {}

    def on_event(event: dict[str, Any]) -> None:
        if event["kind"] == "start":
            marks.setdefault("start", time.perf_counter())

    flow = generate_batch.with_options(task_runner=ThreadPoolTaskRunner(max_workers=args.slots))
    with listen(on_event):
        summary = flow(
            seeds=args.seeds, per_seed=args.per_seed, rng_seed=args.seed, store=args.store
        )
    seconds = time.perf_counter() - marks["start"]
    return {
        "slots": args.slots,
        "accepted": summary["accepted"],
        "candidates": summary["candidates"],
        "reused": summary["reused"],
        "seconds": round(seconds, 2),
        "accepted_per_hour": round(summary["accepted"] * 3600 / seconds, 1),
    }


def measure(args: argparse.Namespace, slots: int, scratch: Path) -> dict[str, Any]:
    """Run the batch with `slots` in a fresh process; its JSON result."""
    env = {
        **os.environ,
        "PREFECT_TASKS_REFRESH_CACHE": "true",  # build every candidate, whatever is cached
        "PREFECT_LOCAL_STORAGE_PATH": str(scratch / f"results-{slots}"),
    }
    argv = [sys.executable, "-m", "bench.concurrency", "--child", "--slots", str(slots)]
    argv += ["--seeds", args.seeds, "--per-seed", str(args.per_seed), "--seed", str(args.seed)]
    argv += ["--store", str(scratch / f"store-{slots}")]
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(f"batch with {slots} slot(s) failed:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    if not result["accepted"]:
        raise RuntimeError(f"batch with {slots} slot(s) accepted no task")
    return result


def report(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per slot count the median of its runs' seconds; the speedup compares those medians."""
    by_slots: dict[int, list[dict[str, Any]]] = {}
    for run in runs:
        by_slots.setdefault(run["slots"], []).append(run)
    medians = []
    for slots, group in sorted(by_slots.items()):
        seconds = statistics.median(r["seconds"] for r in group)
        accepted = statistics.median(r["accepted"] for r in group)
        medians.append(
            {
                "slots": slots,
                "accepted": accepted,
                "candidates": statistics.median(r["candidates"] for r in group),
                "seconds": round(seconds, 2),
                "accepted_per_hour": round(accepted * 3600 / seconds, 1),
                "runs_accepted_per_hour": [r["accepted_per_hour"] for r in group],
            }
        )
    base, top = medians[0], medians[-1]
    speedup = round(top["accepted_per_hour"] / base["accepted_per_hour"], 2)
    return {
        "cores": len(os.sched_getaffinity(0)),
        "runs": runs,
        "medians": medians,
        "speedup": speedup,
        "speedup_slots": top["slots"],
        "target": TARGET_SPEEDUP,
        "met": speedup >= TARGET_SPEEDUP,
    }


def print_report(result: dict[str, Any]) -> None:
    out = Console()
    repeats = max(len(m["runs_accepted_per_hour"]) for m in result["medians"])
    title = f"accepted tasks per hour, one batch, {result['cores']} core(s), median of {repeats}"
    table = Table(title=title)
    for column in ("task slots", "accepted", "candidates", "seconds", "accepted/hour", "runs"):
        table.add_column(column, justify="right")
    for median in result["medians"]:
        table.add_row(
            str(median["slots"]),
            f"{median['accepted']:g}",
            f"{median['candidates']:g}",
            f"{median['seconds']:.1f}",
            f"{median['accepted_per_hour']:.0f}",
            ", ".join(f"{r:.0f}" for r in median["runs_accepted_per_hour"]),
        )
    out.print(table)
    verdict = "[green]met[/green]" if result["met"] else "[red]missed[/red]"
    out.print(
        f"speedup with {result['speedup_slots']} slots: {result['speedup']:.2f}x "
        f"(target >= {result['target']}x: {verdict})"
    )


def build_parser() -> argparse.ArgumentParser:
    from sandforge.commands.output import positive_int

    parser = argparse.ArgumentParser(
        prog="python -m bench.concurrency",
        description="Accepted tasks per hour of one batch with 1 and 2 concurrent task slots.",
    )
    parser.add_argument("--seeds", default="all", help="'all' or comma-separated seed ids")
    parser.add_argument("--per-seed", type=positive_int, default=3, help="tasks per seed (3)")
    parser.add_argument("--seed", type=int, default=0, help="batch RNG seed (0)")
    parser.add_argument("--slots", default="1,2", help="slot counts to compare (1,2)")
    parser.add_argument(
        "--repeat", type=positive_int, default=3, help="runs per slot count, taking turns (3)"
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--store", help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.child:
        args.slots = int(args.slots)
        sys.stdout.write(json.dumps(run_child(args)) + "\n")
        return EXIT_OK
    try:
        slot_counts = sorted({int(s) for s in args.slots.split(",")} | {1})
    except ValueError:
        err.print(f"[red]error:[/red] --slots wants comma-separated integers, got {args.slots!r}")
        return EXIT_BAD_INPUT
    runs = []
    with tempfile.TemporaryDirectory(prefix="sandforge-bench-") as scratch:
        for turn in range(1, args.repeat + 1):
            for slots in slot_counts:
                if not args.json:
                    note = f"run {turn}/{args.repeat}: {slots} task slot(s) ..."
                    err.print(note, highlight=False)
                try:
                    runs.append(measure(args, slots, Path(scratch) / f"run-{turn}"))
                except RuntimeError as exc:
                    err.print(f"[red]error:[/red] {exc}", highlight=False)
                    return EXIT_FAILED
    result = report(runs)
    if args.json:
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
    else:
        print_report(result)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
