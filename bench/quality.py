"""Benchmark task quality: do the tiers pay for craft, and are they steadier than test noise?

    .venv/bin/python -m bench.quality [--seeds all --per-seed 3 --redraws 5 --json --out F]

1. Generates a batch through the real pipeline (the `generate_batch` flow, as
   `bench.generation` runs it) into a temporary store.
2. Runs a panel of solution policies of increasing craft (bench/policies/, written only
   against prepared/public: description.md, train.csv, test.csv, sample_submission.csv) on
   every accepted task, each as a fresh sandboxed process, and scores each submission with
   the bundle's own evaluator.py as the trainer runs it.
3. Re-draws every accepted recipe with other RNG seeds (same recipe, new rng_seed), rebuilt
   through the same building stages `sandforge regenerate` runs (synthesis to evaluator
   contract, so new data and new thresholds), and runs the careful policy on each accepted
   re-draw.
4. Prints per policy the SandMLE milestone reward, medal and gold rates, and the task-level
   figures the issue's "Must show" list names; exit code 0 when every target is met, 1 when
   one is missed (each listed), 2 for bad input.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import itertools
import json
import logging
import math
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

EXIT_MET, EXIT_MISSED, EXIT_BAD_INPUT = 0, 1, 2
POLICY_DIR = Path(__file__).resolve().parent / "policies"
# Craft order, weakest first: the rank Spearman compares rewards with.
POLICIES = ("constant", "naive", "linear", "forest", "boosting", "careful", "ensemble")
CAREFUL, NAIVE, PROPER = "careful", "naive", "linear"  # naive drops every categorical column
OPTIONAL = ("ensemble",)  # --skip may leave these out (they cost the most)
PUBLIC_FILES = ("description.md", "train.csv", "test.csv", "sample_submission.csv")
LEVELS = {None: 0, "median": 1, "bronze": 2, "silver": 3, "gold": 4}
BOOTSTRAP = 200
POLICY_TIMEOUT_S = 180

err = Console(stderr=True)


# --- running and scoring a policy -------------------------------------------------------------


def evaluate(public: Path, submission: Path) -> dict[str, Any]:
    """The bundle's evaluator.py on a submission, cwd = prepared/public, as a trainer runs it."""
    argv = [sys.executable, "evaluator.py", "--submission_path", str(submission)]
    proc = subprocess.run(argv, cwd=public, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        return {"valid": False, "error": (proc.stderr or proc.stdout).strip()[-300:]}
    report = json.loads(proc.stdout)
    return {
        "valid": True,
        "score": report["score"],
        "lower": report["is_lower_better"],
        "thresholds": {t: report[f"{t}_threshold"] for t in ("median", "bronze", "silver", "gold")},
    }


def reward_of(result: dict[str, Any]) -> tuple[float, str | None]:
    """SandMLE's milestone reward and the tier reached (sandforge.tiers' constants)."""
    from sandforge.tiers import SANDMLE_REWARD, VALID_REWARD, tier_of

    if not result.get("valid"):
        return 0.0, None
    tier = tier_of(result["score"], result["thresholds"], result["lower"])
    return (SANDMLE_REWARD[tier] if tier else VALID_REWARD), tier


def run_policy(name: str, bundle: Path, scratch: Path) -> dict[str, Any]:
    """Run one policy on a bundle's public files only (a folder holding nothing else), in the
    project's sandbox, then score what it wrote."""
    from sandforge.validators.sandbox import PYTHON, run_sandboxed

    from sandforge.bundle_files import PUBLIC

    work = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=scratch)) / "public"
    work.mkdir()
    for file in PUBLIC_FILES:
        shutil.copy(bundle / PUBLIC / file, work / file)
    start = time.perf_counter()
    run = run_sandboxed(
        [PYTHON, str(POLICY_DIR / f"{name}.py")],
        workdir=work,
        timeout_s=POLICY_TIMEOUT_S,
        readonly_dirs=(POLICY_DIR,),
        outputs=("submission.csv",),
    )
    seconds = round(time.perf_counter() - start, 2)
    if run.returncode != 0 or "submission.csv" not in run.outputs:
        why = "timed out" if run.timed_out else f"exit {run.returncode}"
        return {
            "policy": name,
            "valid": False,
            "seconds": seconds,
            "error": f"{why}: {run.stderr.strip()[-300:]}",
            "reward": 0.0,
            "tier": None,
        }
    submission = work.parent / "submission.csv"
    submission.write_bytes(run.outputs["submission.csv"])
    result = {"policy": name, "seconds": seconds, **evaluate(bundle / PUBLIC, submission)}
    result["reward"], result["tier"] = reward_of(result)
    result["submission"] = str(submission)
    return result


# --- test noise -------------------------------------------------------------------------------


def bootstrap_se(bundle: Path, submission: Path, rounds: int = BOOTSTRAP) -> float | None:
    """Standard error of the task's metric over bootstrap resamples of the test rows, with the
    bundle's own scoring code (the metric named in sandforge.validators.metrics)."""
    from sandforge.validators import evaluator_template as template
    from sandforge.validators.evaluator import config_of
    from sandforge.validators.metrics import metric_info

    from sandforge.bundle_files import PRIVATE, PUBLIC

    config = config_of((bundle / PUBLIC / "evaluator.py").read_text(encoding="utf-8"))
    metric_info(config["metric"])  # a metric the registry knows
    header, rows = template._read_answers(str(bundle / PRIVATE / "answer.csv"))
    answers = template._answer_table(config, header, rows)
    with submission.open(newline="", encoding="utf-8") as f:
        table = list(csv.reader(f))
    numbered = list(enumerate(table[1:], start=2))
    submitted = template._index_rows(
        table[0], numbered, config["id_column"], template.InvalidSubmission
    )
    y_true, y_pred = template._encode(config, answers, submitted, list(answers))
    scorer = template.METRICS[config["metric"]]
    rng = random.Random(0)
    n = len(y_true)
    values = []
    for _ in range(rounds):
        pick = [rng.randrange(n) for _ in range(n)]
        try:
            values.append(float(scorer([y_true[i] for i in pick], [y_pred[i] for i in pick])))
        except (ZeroDivisionError, ValueError):  # e.g. one class only in the resample
            continue
    values = [v for v in values if math.isfinite(v)]
    return statistics.stdev(values) if len(values) > 1 else None


def tier_steps(thresholds: dict[str, float]) -> list[float]:
    """median->bronze, bronze->silver, silver->gold, as distances."""
    order = ("median", "bronze", "silver", "gold")
    return [abs(thresholds[b] - thresholds[a]) for a, b in itertools.pairwise(order)]


# --- re-draws ---------------------------------------------------------------------------------


def redraw_seed(rng_seed: int, k: int) -> int:
    digest = hashlib.sha256(f"redraw/{rng_seed}/{k}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def redraw(bundle: Path, k: int, scratch: Path) -> tuple[Path | None, str | None]:
    """Rebuild the bundle's recipe with the k-th other RNG seed through the building stages
    `sandforge regenerate` runs (all but design: the recipe is given). Returns the re-drawn
    bundle folder, or None with the rejection."""
    from sandforge.agents.providers import get_provider
    from sandforge.agents.recipe import Recipe
    from sandforge.agents.stages import Design
    from sandforge.seeds.registry import load_all
    from sandforge.storage.bundle import read_manifest

    from sandforge.pipeline import Candidate
    from sandforge.stages import BUILDING, rejected_on_failure, run_stages

    manifest = read_manifest(bundle)
    recipe = Recipe.model_validate(manifest["recipe"])
    seed = redraw_seed(recipe.rng_seed, k)
    card = {c.id: c for c in load_all()}[recipe.seed_id]
    provider = manifest["provider"]
    root = Path(tempfile.mkdtemp(prefix=f"redraw{k}-", dir=scratch))
    candidate = Candidate(
        card=card,
        provider=get_provider(provider["name"], provider["model"]),
        attempt=0,
        rng_seed=seed,
        workdir=root / "work",
        recipe=recipe.model_copy(update={"rng_seed": seed}),
    )
    (root / "work").mkdir()
    stages = tuple(s for s in BUILDING if not isinstance(s, Design))
    candidate = rejected_on_failure(lambda c: run_stages(c, stages), candidate)
    if candidate.rejection is not None:
        return None, f"{candidate.rejection.stage}: {candidate.rejection.reason}"[:300]
    out = root / "bundle"
    for path, content in candidate.files.items():
        (out / path).parent.mkdir(parents=True, exist_ok=True)
        (out / path).write_bytes(content)
    return out, None


# --- manifest sections other engineers add ----------------------------------------------------


def crafts_of(manifest: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The manifest's `crafts` list ({quirk, craft, gain, tier_step, carried}), None if absent."""
    crafts = manifest.get("crafts")
    return list(crafts) if isinstance(crafts, list) else None


def constraint_violations(validation: dict[str, Any]) -> int | None:
    """Domain-constraint violations the validation section reports, None where it reports
    none. Accepts any key naming constraints: a count, a list of failures, or a dict holding
    `violations` / `failed`."""

    def count(value: Any) -> int | None:
        if isinstance(value, bool):
            return None
        if isinstance(value, int):
            return value
        if isinstance(value, list):
            return len(value)
        if isinstance(value, dict):
            for key in ("violations", "failed", "n_violations"):
                if key in value:
                    return count(value[key])
        return None

    found: list[int] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if "constraint" in str(key).lower() and (n := count(value)) is not None:
                    found.append(n)
                else:
                    walk(value)

    walk(validation)
    return sum(found) if found else None


# --- the batch --------------------------------------------------------------------------------


def generate(args: argparse.Namespace, store: Path) -> dict[str, Any]:
    """One batch through the generate_batch flow (bench.generation's in-process run)."""
    from bench.generation import run_batch

    batch_args = argparse.Namespace(
        seeds=args.seeds,
        per_seed=args.per_seed,
        seed=args.seed,
        max_attempts=None,
        concurrency=args.concurrency,
        json=True,  # no per-candidate lines
    )
    return run_batch(batch_args, store)["summary"]


def study_task(task: dict[str, Any], args: argparse.Namespace, scratch: Path) -> dict[str, Any]:
    """Every policy on one accepted task, the careful policy's noise, and its re-draws."""
    from sandforge.storage.bundle import read_manifest

    bundle = Path(task["path"])
    manifest = read_manifest(bundle)
    entry: dict[str, Any] = {
        "task_id": manifest["task_id"],
        "seed_id": manifest["seed_id"],
        "metric": manifest["recipe"]["metric"],
        "thresholds": manifest["thresholds"],
        "crafts": crafts_of(manifest),
        "constraint_violations": constraint_violations(manifest.get("validation", {})),
        "policies": {},
    }
    for name in args.policies:
        result = run_policy(name, bundle, scratch)
        entry["policies"][name] = result
        if not args.json:
            err.print(
                f"    {name:<9} {result.get('score', '-')!s:>10}  {result['tier'] or '-':<6}"
                f" {result['seconds']:>6.1f} s {result.get('error', '')[:80]}",
                highlight=False,
            )
    careful = entry["policies"][CAREFUL]
    steps = tier_steps(manifest["thresholds"])
    se = bootstrap_se(bundle, Path(careful["submission"])) if careful.get("valid") else None
    entry["bootstrap_se"] = se
    entry["steps_in_se"] = [round(s / se, 3) for s in steps] if se else None
    draws = [
        {
            "rng_seed": manifest["recipe"]["rng_seed"],
            "tier": careful["tier"],
            "reward": careful["reward"],
            "original": True,
        }
    ]
    for k in range(1, args.redraws + 1):
        rebuilt, rejection = redraw(bundle, k, scratch)
        if rebuilt is None:
            draws.append({"k": k, "accepted": False, "rejection": rejection})
            if not args.json:
                err.print(f"    redraw {k}: rejected ({rejection[:90]})", highlight=False)
            continue
        result = run_policy(CAREFUL, rebuilt, scratch)
        draws.append({"k": k, "accepted": True, "tier": result["tier"], "reward": result["reward"]})
        if not args.json:
            err.print(f"    redraw {k}: careful {result['tier'] or '-'}", highlight=False)
    entry["draws"] = draws
    for result in entry["policies"].values():
        result.pop("submission", None)
    return entry


# --- figures ----------------------------------------------------------------------------------


def spearman(ranks: list[float], values: list[float]) -> float:
    """Spearman's rho; 0 when the rewards are all equal (no sign that craft pays)."""
    from scipy.stats import spearmanr

    if len(set(values)) < 2:
        return 0.0
    return float(spearmanr(ranks, values).statistic)


def figures(tasks: list[dict[str, Any]], summary: dict[str, Any]) -> dict[str, Any]:
    n = len(tasks)
    panel = list(tasks[0]["policies"])  # craft order, as run
    per_policy = {}
    for name in panel:
        results = [t["policies"][name] for t in tasks]
        tiers = [r["tier"] for r in results]
        per_policy[name] = {
            "mean_reward": round(statistics.mean(r["reward"] for r in results), 4),
            "medal_rate": round(sum(t in ("bronze", "silver", "gold") for t in tiers) / n, 4),
            "gold_rate": round(sum(t == "gold" for t in tiers) / n, 4),
            "invalid": sum(not r.get("valid") for r in results),
            "median_seconds": round(statistics.median(r["seconds"] for r in results), 2),
        }
    rhos = [
        spearman(list(range(len(panel))), [t["policies"][p]["reward"] for p in panel])
        for t in tasks
    ]
    min_steps = [min(t["steps_in_se"]) if t["steps_in_se"] else None for t in tasks]
    stable, spans = [], []
    draws_total = draws_accepted = 0
    careful_redraw_tiers: list[str | None] = []
    for t in tasks:
        levels = [LEVELS[d["tier"]] for d in t["draws"] if d.get("accepted", True)]
        spans.append(max(levels) - min(levels))
        stable.append(spans[-1] <= 1)
        redraws = [d for d in t["draws"] if not d.get("original")]
        draws_total += len(redraws)
        draws_accepted += sum(d["accepted"] for d in redraws)
        careful_redraw_tiers += [d["tier"] for d in redraws if d["accepted"]]
    crafts = [c for t in tasks for c in (t["crafts"] or [])]
    by_quirk: dict[str, dict[str, Any]] = {}
    for c in crafts:
        q = by_quirk.setdefault(str(c.get("quirk")), {"n": 0, "carried": 0, "gains_in_steps": []})
        q["n"] += 1
        q["carried"] += bool(c.get("carried"))
        if c.get("gain") is not None and c.get("tier_step"):
            q["gains_in_steps"].append(round(float(c["gain"]) / float(c["tier_step"]), 3))
    violations = [t["constraint_violations"] for t in tasks]
    reported = [v for v in violations if v is not None]
    m = len(careful_redraw_tiers)
    return {
        "tasks": n,
        "policies": per_policy,
        "spearman": {
            "median": round(statistics.median(rhos), 4),
            "per_task": [round(r, 3) for r in rhos],
        },
        "tier_steps_in_se": {
            "median_min_step": _median([s for s in min_steps if s is not None]),
            "tasks_all_steps_ge_1_5": sum(s is not None and s >= 1.5 for s in min_steps),
            "tasks_measured": sum(s is not None for s in min_steps),
            "per_task_min": min_steps,
        },
        "stability": {
            "recipes": n,
            "within_one_level": sum(stable),
            "rate": round(sum(stable) / n, 4),
            "spans": spans,
            "careful_gold_rate_redraws": round(
                sum(t == "gold" for t in careful_redraw_tiers) / m, 4
            )
            if m
            else None,
            "careful_medal_rate_redraws": round(
                sum(t in ("bronze", "silver", "gold") for t in careful_redraw_tiers) / m, 4
            )
            if m
            else None,
        },
        "crafts": {
            "tasks_with_crafts": sum(t["crafts"] is not None for t in tasks),
            "quirks": len(crafts),
            "carried": sum(bool(c.get("carried")) for c in crafts),
            "by_quirk": by_quirk,
        },
        "constraint_violations": {
            "tasks_reporting": len(reported),
            "total": sum(reported) if reported else None,
        },
        "acceptance": {
            "candidates": summary["candidates"],
            "accepted": summary["accepted"],
            "yield": summary["acceptance_rate"],
            "redraws": draws_total,
            "redraws_accepted": draws_accepted,
            "redraw_yield": round(draws_accepted / draws_total, 4) if draws_total else None,
            "rejections_by_stage": summary["rejections_by_stage"],
        },
        "naive_beats_proper": per_policy[NAIVE]["mean_reward"] > per_policy[PROPER]["mean_reward"],
    }


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None


def must_show(f: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's "Must show" targets this benchmark measures, each met or missed."""
    p, careful, naive = f["policies"], f["policies"][CAREFUL], f["policies"][NAIVE]
    steps, crafts = f["tier_steps_in_se"], f["crafts"]
    violations = f["constraint_violations"]["total"]
    rows = [
        ("careful gold rate >= 30%", careful["gold_rate"], careful["gold_rate"] >= 0.30),
        ("careful medal rate >= 80%", careful["medal_rate"], careful["medal_rate"] >= 0.80),
        ("naive numeric-only gold rate <= 5%", naive["gold_rate"], naive["gold_rate"] <= 0.05),
        (
            "median Spearman(craft rank, reward) >= 0.8",
            f["spearman"]["median"],
            f["spearman"]["median"] >= 0.8,
        ),
        (
            "drop-all-categoricals (naive) does not beat proper preprocessing",
            f"{p[NAIVE]['mean_reward']} vs {p[PROPER]['mean_reward']}",
            not f["naive_beats_proper"],
        ),
        (
            "every accepted task's tier steps >= 1.5 bootstrap SE",
            f"{steps['tasks_all_steps_ge_1_5']}/{f['tasks']}",
            steps["tasks_all_steps_ge_1_5"] == f["tasks"],
        ),
        (
            "careful tier within one level over re-draws on >= 90% of recipes",
            f["stability"]["rate"],
            f["stability"]["rate"] >= 0.90,
        ),
        (
            ">= 80% of quirks carried (gain >= one tier step)",
            f"{crafts['carried']}/{crafts['quirks']}"
            if crafts["quirks"]
            else "no crafts in manifests",
            bool(crafts["quirks"]) and crafts["carried"] >= 0.8 * crafts["quirks"],
        ),
        (
            "0 domain-constraint violations",
            "not reported" if violations is None else violations,
            violations == 0,
        ),
        ("acceptance yield >= 80%", f["acceptance"]["yield"], f["acceptance"]["yield"] >= 0.80),
    ]
    return [{"target": t, "measured": m, "met": bool(ok)} for t, m, ok in rows]


# --- report -----------------------------------------------------------------------------------


def markdown(report: dict[str, Any]) -> str:
    f = report["figures"]
    panel = list(f["policies"])
    lines = [
        f"# bench.quality: {f['tasks']} tasks, {report['args']['redraws']} re-draws each",
        "",
        f"Command: `{report['command']}`  ",
        f"Run time: {report['seconds']:.0f} s on {report['cores']} cores",
        "",
        "| policy | craft rank | mean reward | medal rate | gold rate | invalid | median s |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for rank, (name, row) in enumerate(f["policies"].items(), start=1):
        lines.append(
            f"| {name} | {rank} | {row['mean_reward']:.3f} | {row['medal_rate']:.0%} | "
            f"{row['gold_rate']:.0%} | {row['invalid']} | {row['median_seconds']} |"
        )
    s, st, a = f["tier_steps_in_se"], f["stability"], f["acceptance"]
    lines += [
        "",
        f"- median per-task Spearman(craft rank, reward): {f['spearman']['median']}",
        f"- naive numeric-only beats proper preprocessing on average: {f['naive_beats_proper']}",
        f"- tier steps in bootstrap SE of the careful policy's score: median smallest step "
        f"{s['median_min_step']}; tasks with every step >= 1.5 SE: "
        f"{s['tasks_all_steps_ge_1_5']}/{s['tasks_measured']}",
        f"- careful tier within one level over the draws: {st['within_one_level']}/{st['recipes']}"
        f" recipes; careful gold / medal rate over accepted re-draws: "
        f"{st['careful_gold_rate_redraws']} / {st['careful_medal_rate_redraws']}",
        f"- crafts: {f['crafts']['carried']}/{f['crafts']['quirks']} quirks carried "
        f"({f['crafts']['tasks_with_crafts']} manifests with a `crafts` field)",
        f"- domain-constraint violations: {f['constraint_violations']['total']} "
        f"({f['constraint_violations']['tasks_reporting']} manifests reporting)",
        f"- acceptance yield: {a['accepted']}/{a['candidates']} = {a['yield']}; re-draws "
        f"accepted {a['redraws_accepted']}/{a['redraws']}",
        "",
        "| Must show | measured | |",
        "| --- | --- | --- |",
    ]
    for row in report["must_show"]:
        lines.append(
            f"| {row['target']} | {row['measured']} | {'met' if row['met'] else 'MISSED'} |"
        )
    lines += [
        "",
        "| task | metric | " + " | ".join(panel) + " | steps/SE | careful tiers over draws |",
        "| --- | --- | " + " | ".join("---" for _ in panel) + " | --- | --- |",
    ]
    for t in report["tasks"]:
        cells = [
            t["policies"][p]["tier"] or ("-" if t["policies"][p].get("valid") else "invalid")
            for p in panel
        ]
        draws = ", ".join(
            d["tier"] or "-" if d.get("accepted", True) else "rej" for d in t["draws"]
        )
        lines.append(
            f"| {t['task_id']} | {t['metric']} | "
            + " | ".join(cells)
            + f" | {t['steps_in_se']} | {draws} |"
        )
    return "\n".join(lines) + "\n"


def print_report(report: dict[str, Any]) -> None:
    out = Console(width=None if sys.stdout.isatty() else 140)
    f = report["figures"]
    table = Table(title=f"policies on {f['tasks']} tasks (SandMLE milestone reward)")
    for column in ("policy", "mean reward", "medal rate", "gold rate", "invalid", "median s"):
        table.add_column(column, justify="left" if column == "policy" else "right")
    for name, row in f["policies"].items():
        table.add_row(
            name,
            f"{row['mean_reward']:.3f}",
            f"{row['medal_rate']:.0%}",
            f"{row['gold_rate']:.0%}",
            str(row["invalid"]),
            f"{row['median_seconds']}",
        )
    out.print(table)
    body = markdown(report).split("\n| Must show")[0].split("\n- ", 1)[1]
    for line in ("- " + body).strip().splitlines():
        out.print(line, highlight=False)
    targets = Table(title="Must show")
    for column in ("target", "measured", "verdict"):
        targets.add_column(column)
    for row in report["must_show"]:
        targets.add_row(
            row["target"],
            str(row["measured"]),
            "[green]met[/green]" if row["met"] else "[red]missed[/red]",
        )
    out.print(targets)
    out.print(f"run time {report['seconds']:.0f} s", highlight=False)


# --- entry point ------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    from sandforge.commands.output import positive_int

    parser = argparse.ArgumentParser(
        prog="python -m bench.quality",
        description="Generate a batch, run a panel of solution policies, re-draw recipes, "
        "and check the figures against the task-quality targets.",
    )
    parser.add_argument("--seeds", default="all", help="'all' or comma-separated seed ids")
    parser.add_argument(
        "--per-seed", type=positive_int, default=3, help="accepted tasks per seed (3)"
    )
    parser.add_argument("--seed", type=int, default=0, help="batch RNG seed (0)")
    parser.add_argument("--redraws", type=int, default=5, help="re-draws per recipe (5)")
    parser.add_argument(
        "--concurrency", type=positive_int, default=2, help="candidates at once (2)"
    )
    parser.add_argument(
        "--skip",
        default="",
        help="comma-separated optional policies to leave out of the panel (e.g. ensemble)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--out", default=None, help="also write the report: .json or markdown")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from sandforge.seeds.card import SeedCardError
    from sandforge.seeds.registry import ContaminationError, select

    if args.redraws < 0:
        err.print("[red]error:[/red] --redraws must be >= 0")
        return EXIT_BAD_INPUT
    skipped = {name for name in args.skip.split(",") if name}
    if not skipped <= set(OPTIONAL):
        err.print(f"[red]error:[/red] --skip takes only {', '.join(OPTIONAL)}")
        return EXIT_BAD_INPUT
    args.policies = [name for name in POLICIES if name not in skipped]
    try:
        select(args.seeds, warn=False)
    except (SeedCardError, ContaminationError) as exc:
        err.print(f"[red]error:[/red] {exc}")
        return EXIT_BAD_INPUT
    begin = time.perf_counter()
    scratch = Path(tempfile.mkdtemp(prefix="sandforge-quality-"))
    try:
        if not args.json:
            err.print(f"generating {args.seeds} x {args.per_seed} ...", highlight=False)
        summary = generate(args, scratch / "store")
        accepted = [t for t in summary["tasks"] if t.get("path")]
        if not accepted:
            err.print("[red]no task accepted[/red]: nothing to measure")
            return EXIT_MISSED
        tasks = []
        for i, task in enumerate(sorted(accepted, key=lambda t: (t["seed_id"], t["task_id"]))):
            if not args.json:
                err.print(f"  [{i + 1}/{len(accepted)}] {task['task_id']}", highlight=False)
            tasks.append(study_task(task, args, scratch))
            if args.out:  # a long run keeps what it measured if a later step fails
                with Path(f"{args.out}.partial.jsonl").open("a", encoding="utf-8") as f:
                    f.write(json.dumps(tasks[-1]) + "\n")
        from bench.generation import cores

        report: dict[str, Any] = {
            "command": "python -m bench.quality "
            + " ".join(argv if argv is not None else sys.argv[1:]),
            "args": vars(args),
            "cores": cores(),
            "figures": figures(tasks, summary),
            "tasks": tasks,
        }
        report["must_show"] = must_show(report["figures"])
        report["seconds"] = round(time.perf_counter() - begin, 1)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if args.out:
        text = json.dumps(report, indent=2) if args.out.endswith(".json") else markdown(report)
        Path(args.out).write_text(text, encoding="utf-8")
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_report(report)
    missed = [row["target"] for row in report["must_show"] if not row["met"]]
    for target in missed:
        err.print(f"[yellow]missed:[/yellow] {target}", highlight=False)
    return EXIT_MISSED if missed else EXIT_MET


if __name__ == "__main__":
    raise SystemExit(main())
