"""Benchmark one generation batch against the factory's targets.

    .venv/bin/python -m bench.generation [--seeds all --per-seed 3 --json]

Runs the `generate_batch` flow in-process (as `sandforge generate` does, with the same
Prefect defaults), then times, on bundles the batch produced:

- the strongest baseline, the solver pool, as a fresh sandboxed process
  (`run_ladder(work, ("pool",))`),
- the bundle's `evaluator.py` as a fresh process, the way the trainer runs it.

Every figure is compared with its target. Benchmarks report, they do not gate: the exit code
is 0 unless the batch itself fails (the flow raises or accepts no task), then 1.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2

# name -> (target, "max" if the measured value must stay at or below it, else "min")
TARGETS: dict[str, tuple[float, str]] = {
    "evaluator_seconds": (0.150, "max"),
    "strong_baseline_seconds": (2.0, "max"),  # issue 13: one strong honest model <= 2 s
    "accepted_per_hour": (600.0, "min"),
}
TARGET_CORES = 2  # the throughput target is stated for a 2-core machine

STRONGEST = "pool"  # the baseline timed as a solver runs (the strongest one)
err = Console(stderr=True)


def _median(values: Sequence[float]) -> float | None:
    return round(statistics.median(values), 4) if values else None


def _spread(values: Sequence[float]) -> dict[str, Any]:
    """Median, min, max and (with enough samples) p90 of some durations, in seconds."""
    if not values:
        return {"runs": 0, "median": None, "min": None, "max": None, "p90": None}
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    return {
        "runs": len(values),
        "median": _median(values),
        "min": round(ordered[0], 4),
        "max": round(ordered[-1], 4),
        "p90": round(p90, 4),
    }


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


# --- the batch -------------------------------------------------------------------------------


def run_batch(args: argparse.Namespace, store: Path) -> dict[str, Any]:
    """Run the flow in-process; returns its summary plus wall-clock figures.

    The clock starts before Prefect is imported, so `wall_seconds` is what a fresh
    `sandforge generate` pays. `startup_seconds` runs until the flow body announces the batch
    (its first progress event): imports, the ephemeral API server, the flow run's creation.
    """
    from sandforge.commands.output import prefect_defaults

    prefect_defaults()
    os.environ.setdefault("PREFECT_TASKS_REFRESH_CACHE", "true")  # measure builds, not the cache
    begin = time.perf_counter()
    from prefect.task_runners import ThreadPoolTaskRunner
    from sandforge.flows.generate_batch import generate_batch

    from sandforge.progress import listen

    marks: dict[str, float] = {}
    counts = {"candidates": 0, "accepted": 0}

    def on_event(event: dict[str, Any]) -> None:
        if event["kind"] == "start":
            marks.setdefault("start", time.perf_counter())
            counts["wanted"] = event["tasks_wanted"]
        elif event["kind"] == "candidate":
            counts["candidates"] += 1
            counts["accepted"] += bool(event["accepted"])
            if not args.json:
                err.print(
                    f"  {counts['candidates']:>3} candidates, {counts['accepted']:>3}/"
                    f"{counts.get('wanted', '?')} accepted  ({event['label']}: "
                    f"{'accepted' if event['accepted'] else 'rejected'})",
                    highlight=False,
                    soft_wrap=True,
                )

    flow = generate_batch.with_options(
        task_runner=ThreadPoolTaskRunner(max_workers=args.concurrency)
    )
    with listen(on_event):
        summary = flow(
            seeds=args.seeds,
            per_seed=args.per_seed,
            rng_seed=args.seed,
            store=str(store),
            max_attempts_per_seed=args.max_attempts,
        )
    end = time.perf_counter()
    wall = end - begin
    startup = marks["start"] - begin if "start" in marks else None
    generation = end - marks["start"] if "start" in marks else None
    accepted = summary["accepted"]
    return {
        "summary": summary,
        "wall_seconds": round(wall, 3),
        "startup_seconds": None if startup is None else round(startup, 3),
        "generation_seconds": None if generation is None else round(generation, 3),
        "accepted_per_hour": round(accepted * 3600 / wall, 1) if wall > 0 else None,
        "accepted_per_hour_excl_startup": (
            round(accepted * 3600 / generation, 1) if generation else None
        ),
    }


def ordered_stages(medians: dict[str, float]) -> dict[str, float]:
    """The summary's per-stage medians in pipeline order (unknown stages last)."""
    from sandforge.stages import STAGE_ORDER

    known = {name: medians[name] for name in STAGE_ORDER if name in medians}
    return {**known, **{k: v for k, v in sorted(medians.items()) if k not in known}}


def pick_bundles(tasks: Iterable[dict[str, Any]], n: int) -> list[Path]:
    """Up to n bundles, one seed at a time (round robin), so task types and metrics vary."""
    by_seed: dict[str, list[Path]] = {}
    for t in sorted(tasks, key=lambda t: (t["seed_id"], t["task_id"])):
        if t.get("path"):
            by_seed.setdefault(t["seed_id"], []).append(Path(t["path"]))
    picked: list[Path] = []
    while len(picked) < n and any(by_seed.values()):
        for paths in by_seed.values():
            if paths and len(picked) < n:
                picked.append(paths.pop(0))
    return picked


def _label(bundle: Path) -> str:
    return f"{bundle.parent.name}@{bundle.name}"


# --- the strongest baseline ------------------------------------------------------------------


def time_strong_baseline(bundle: Path, runs: int, scratch: Path) -> dict[str, Any]:
    """Run the strongest baseline alone on the bundle's public data, as a solver runs: a fresh
    sandboxed process.

    `seconds` is the wall time around `run_ladder` (sandbox setup included), `process_seconds`
    what the sandbox itself measured. The submission is scored and compared with the score the
    pipeline recorded in the manifest.
    """
    from sandforge.agents.recipe import Recipe
    from sandforge.storage.bundle import read_manifest
    from sandforge.validators.baselines.runner import BaselineFailed, run_ladder, write_task_json
    from sandforge.validators.evaluator import evaluator_config, score_submission

    from sandforge.bundle_files import PRIVATE, PUBLIC

    manifest = read_manifest(bundle)
    recipe = Recipe.model_validate(manifest["recipe"])
    work = Path(tempfile.mkdtemp(prefix="strong-", dir=scratch))
    for name in ("train.csv", "test.csv", "sample_submission.csv"):
        shutil.copy(bundle / PUBLIC / name, work / name)
    write_task_json(work, recipe)
    out: dict[str, Any] = {"bundle": _label(bundle), "seconds": [], "process_seconds": []}
    for _ in range(runs):
        start = time.perf_counter()
        try:
            result = run_ladder(work, (STRONGEST,))[STRONGEST]
        except BaselineFailed as exc:
            out["error"] = str(exc)[-500:]
            break
        out["seconds"].append(round(time.perf_counter() - start, 4))
        out["process_seconds"].append(round(result.seconds, 4))
        out["backend"] = result.backend
    if out["seconds"]:
        config = evaluator_config(recipe, None)
        answers = bundle / PRIVATE / "answer.csv"
        out["score"] = round(score_submission(config, result.submission, answers), 6)
        out["manifest_score"] = manifest["baseline_scores"].get(STRONGEST)
    shutil.rmtree(work, ignore_errors=True)
    return out


# --- the bundle's evaluator ------------------------------------------------------------------


def time_evaluator(bundle: Path, runs: int, scratch: Path) -> dict[str, Any]:
    """`python evaluator.py --submission_path sample_submission.csv`, cwd = prepared/public.

    Runs on a copy of the bundle's prepared/ folder (answers at ../private/answer.csv) so the
    store stays untouched; the score printed is compared with the manifest's sample score.
    """
    from sandforge.storage.bundle import read_manifest

    from sandforge.bundle_files import PUBLIC

    manifest = read_manifest(bundle)
    root = Path(tempfile.mkdtemp(prefix="evaluator-", dir=scratch))
    shutil.copytree(bundle / "prepared", root / "prepared")
    public = root / PUBLIC
    argv = [sys.executable, "evaluator.py", "--submission_path", "sample_submission.csv"]
    out: dict[str, Any] = {"bundle": _label(bundle), "seconds": []}
    stdout = ""
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.run(argv, cwd=public, capture_output=True, text=True, timeout=60)
        elapsed = time.perf_counter() - start
        if proc.returncode != 0:
            out["error"] = f"exit code {proc.returncode}: {proc.stderr[-500:]}"
            break
        out["seconds"].append(round(elapsed, 4))
        stdout = proc.stdout
    if stdout:
        try:
            out["score"] = round(float(json.loads(stdout)["score"]), 6)
        except (ValueError, KeyError, TypeError):
            out["error"] = f"stdout is not the contract's JSON: {stdout[:200]!r}"
        out["manifest_score"] = manifest["baseline_scores"].get("sample")
    shutil.rmtree(root, ignore_errors=True)
    return out


def time_interpreter(runs: int) -> dict[str, Any]:
    """`python -c pass`: the floor under any fresh-process figure on this machine."""
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True, capture_output=True)
        seconds.append(time.perf_counter() - start)
    return _spread(seconds)


# --- report ----------------------------------------------------------------------------------


def verdicts(measured: dict[str, float | None]) -> list[dict[str, Any]]:
    rows = []
    for name, (target, kind) in TARGETS.items():
        value = measured.get(name)
        met = None if value is None else (value <= target if kind == "max" else value >= target)
        rows.append({"name": name, "measured": value, "target": target, "kind": kind, "met": met})
    return rows


def problems_in(report: dict[str, Any]) -> list[str]:
    """Things worth a look that are not just a missed target."""
    found = []
    batch = report["batch"]
    if batch["short_of_quota"]:
        found.append(f"short of quota: {batch['short_of_quota']}")
    for part, score_key in (("strong_baseline", STRONGEST), ("evaluator", "sample")):
        for run in report[part]["bundles"]:
            if "error" in run:
                found.append(f"{part} on {run['bundle']}: {run['error']}")
                continue
            expected = run.get("manifest_score")
            score = run.get("score")
            if score is not None and expected is not None and score != round(expected, 6):
                found.append(
                    f"{part} on {run['bundle']}: scored {score_key} {score}, the manifest "
                    f"says {expected}"
                )
    if report["machine"]["cores"] != TARGET_CORES:
        found.append(
            f"this machine has {report['machine']['cores']} cores; the throughput target is "
            f"for {TARGET_CORES}"
        )
    return found


def _fmt_seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def _fmt(name: str, value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0f}/h" if name.startswith("accepted_per_hour") else _fmt_seconds(value)


def print_report(report: dict[str, Any]) -> None:
    out = Console(width=None if sys.stdout.isatty() else 120)
    batch = report["batch"]
    out.print(
        f"[bold]batch[/bold] seeds={batch['seeds']} per_seed={batch['per_seed']} "
        f"concurrency={batch['concurrency']} cores={report['machine']['cores']}: "
        f"{batch['candidates']} candidates -> {batch['accepted']} accepted "
        f"({batch['acceptance_rate']:.0%}), {batch['rejected']} rejected",
        highlight=False,
    )
    out.print(
        f"wall {batch['wall_seconds']:.1f} s = startup {batch['startup_seconds'] or 0:.1f} s "
        f"(imports + Prefect) + generation {batch['generation_seconds'] or 0:.1f} s",
        highlight=False,
    )
    for stage, reasons in batch["rejections_by_stage"].items():
        for reason, count in reasons.items():
            out.print(f"  rejected at {stage}: {reason} x{count}", highlight=False)

    stages = Table(title="median seconds per stage")
    stages.add_column("stage")
    stages.add_column("median", justify="right")
    for stage, seconds in report["stages"].items():
        stages.add_row(stage, f"{seconds:.3f} s")
    stages.add_row("[bold]sum of medians[/bold]", f"{sum(report['stages'].values()):.3f} s")
    out.print(stages)

    targets = Table(title="targets")
    for column in ("figure", "measured", "target", "verdict", "basis"):
        targets.add_column(column, justify="right" if column in ("measured", "target") else "left")
    basis = {
        "evaluator_seconds": (
            f"median of {report['evaluator']['runs']} fresh runs over "
            f"{len(report['evaluator']['bundles'])} bundle(s)"
        ),
        "strong_baseline_seconds": (
            f"median of {report['strong_baseline']['runs']} sandboxed runs over "
            f"{len(report['strong_baseline']['bundles'])} bundle(s)"
        ),
        "accepted_per_hour": f"{batch['accepted']} accepted / {batch['wall_seconds']:.1f} s wall",
    }
    for row in report["targets"]:
        sign = "<=" if row["kind"] == "max" else ">="
        verdict = {True: "[green]met[/green]", False: "[red]missed[/red]", None: "-"}[row["met"]]
        targets.add_row(
            row["name"],
            _fmt(row["name"], row["measured"]),
            f"{sign} {_fmt(row['name'], row['target'])}",
            verdict,
            basis[row["name"]],
        )
    out.print(targets)

    info = report["info"]
    context = Table(title="context (no target)")
    for column in ("figure", "measured", "basis"):
        context.add_column(column, justify="right" if column == "measured" else "left")
    context.add_row(
        "accepted_per_hour excl. startup",
        _fmt("accepted_per_hour", batch["accepted_per_hour_excl_startup"]),
        f"{batch['accepted']} accepted / {batch['generation_seconds'] or 0:.1f} s generation",
    )
    for name in ("evaluator", "strong_baseline"):
        context.add_row(
            f"{name} p90 / max",
            f"{_fmt_seconds(report[name]['p90'])} / {_fmt_seconds(report[name]['max'])}",
            f"over the same {report[name]['runs']} runs",
        )
    for name, seconds in info["pipeline_baseline_seconds"].items():
        context.add_row(
            f"{name} baseline inside the batch",
            _fmt_seconds(seconds),
            f"median in the flow, up to {batch['concurrency']} candidates at once",
        )
    context.add_row(
        "python -c pass",
        _fmt_seconds(info["interpreter"]["median"]),
        f"interpreter start-up floor, median of {info['interpreter']['runs']} runs",
    )
    out.print(context)
    for problem in report["problems"]:
        out.print(f"[yellow]note:[/yellow] {problem}", highlight=False)


# --- entry point -----------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    from sandforge.commands.output import positive_int

    parser = argparse.ArgumentParser(
        prog="python -m bench.generation",
        description="Generate one batch and compare its throughput and latencies with targets.",
    )
    parser.add_argument("--seeds", default="all", help="'all' or comma-separated seed ids")
    parser.add_argument(
        "--per-seed", type=positive_int, default=3, help="accepted tasks per seed (3)"
    )
    parser.add_argument("--seed", type=int, default=0, help="batch RNG seed (0)")
    parser.add_argument(
        "--max-attempts", type=positive_int, default=None, help="candidate cap per seed"
    )
    parser.add_argument(
        "--concurrency", type=positive_int, default=2, help="candidates at once (2)"
    )
    parser.add_argument(
        "--store", default=None, help="bundle store (default: a temp dir, removed afterwards)"
    )
    parser.add_argument(
        "--baseline-bundles", type=positive_int, default=3, help="bundles to time strong.py on (3)"
    )
    parser.add_argument(
        "--baseline-runs", type=positive_int, default=2, help="strong.py runs each (2)"
    )
    parser.add_argument(
        "--evaluator-bundles",
        type=positive_int,
        default=5,
        help="bundles to time evaluator.py on (5)",
    )
    parser.add_argument(
        "--evaluator-runs", type=positive_int, default=10, help="evaluator runs each (10)"
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from sandforge.seeds.card import SeedCardError
    from sandforge.seeds.registry import ContaminationError, select

    try:
        select(args.seeds, warn=False)
    except (SeedCardError, ContaminationError) as exc:
        err.print(f"[red]error:[/red] {exc}")
        return EXIT_BAD_INPUT

    scratch = Path(tempfile.mkdtemp(prefix="sandforge-bench-"))
    store = Path(args.store) if args.store else scratch / "store"
    try:
        if not args.json:
            err.print(f"generating into {store} ...", highlight=False)
        try:
            batch = run_batch(args, store)
        except Exception as exc:
            err.print(f"[red]batch failed:[/red] {type(exc).__name__}: {exc}")
            return EXIT_FAILED
        summary = batch.pop("summary")
        if not summary["accepted"]:
            err.print("[red]batch failed:[/red] no task accepted, nothing to time")
            _dump_or_print_failure(args, summary)
            return EXIT_FAILED

        if not args.json:
            err.print("timing strong.py and evaluator.py on the produced bundles ...")
        baseline_runs = [
            time_strong_baseline(b, args.baseline_runs, scratch)
            for b in pick_bundles(summary["tasks"], args.baseline_bundles)
        ]
        evaluator_runs = [
            time_evaluator(b, args.evaluator_runs, scratch)
            for b in pick_bundles(summary["tasks"], args.evaluator_bundles)
        ]
        strong_all = [s for r in baseline_runs for s in r["seconds"]]
        evaluator_all = [s for r in evaluator_runs for s in r["seconds"]]
        report: dict[str, Any] = {
            "machine": {"cores": cores(), "python": sys.version.split()[0]},
            "batch": {
                "seeds": args.seeds,
                "per_seed": args.per_seed,
                "rng_seed": args.seed,
                "concurrency": args.concurrency,
                "store": str(store) if args.store else None,
                **{
                    k: summary[k] for k in ("candidates", "accepted", "rejected", "acceptance_rate")
                },
                "short_of_quota": summary["short_of_quota"],
                "rejections_by_stage": summary["rejections_by_stage"],
                **batch,
            },
            "stages": ordered_stages(summary["median_stage_seconds"]),
            "strong_baseline": {**_spread(strong_all), "bundles": baseline_runs},
            "evaluator": {**_spread(evaluator_all), "bundles": evaluator_runs},
            "info": {
                "pipeline_baseline_seconds": summary["median_baseline_seconds"],
                "interpreter": time_interpreter(10),
            },
        }
        report["targets"] = verdicts(
            {
                "evaluator_seconds": report["evaluator"]["median"],
                "strong_baseline_seconds": report["strong_baseline"]["median"],
                "accepted_per_hour": batch["accepted_per_hour"],
            }
        )
        report["problems"] = problems_in(report)
        if args.json:
            sys.stdout.write(json.dumps(report, indent=2) + "\n")
        else:
            print_report(report)
        return EXIT_OK
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _dump_or_print_failure(args: argparse.Namespace, summary: dict[str, Any]) -> None:
    if args.json:
        sys.stdout.write(json.dumps({"batch": summary}, indent=2, sort_keys=True, default=str))
        sys.stdout.write("\n")
    else:
        for stage, reasons in summary["rejections_by_stage"].items():
            for reason, count in reasons.items():
                err.print(f"  rejected at {stage}: {reason} x{count}", highlight=False)


if __name__ == "__main__":
    sys.exit(main())
