"""How often a store's tasks carry their seed's craft, and what the craft checks cost.

    .venv/bin/python -m bench.crafts --store ./store [--time N] [--json]

Reads every bundle's manifest (`crafts`: one record per quirk, validators/craft_checks.py) and
prints per quirk: tasks, carried (gain >= one tier step), median gain in tier steps.
`--time N` also reruns the craft checks of up to N bundles (one sandboxed process each, as the
`crafts` stage runs them) and prints their median wall seconds: the time the checks add to a
task that has quirks.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from sandforge.agents.recipe import Recipe
from sandforge.storage.backends import open_store
from sandforge.validators.craft_checks import run_crafts

from sandforge.bundle_files import PUBLIC


def tally(store_url: str) -> dict[str, dict[str, float]]:
    store = open_store(store_url)
    records: dict[str, list[dict]] = defaultdict(list)
    for task_id, version in store.latest_versions():
        for record in store.read_manifest(task_id, version).get("crafts") or []:
            records[record["quirk"]].append(record)
    out = {}
    for quirk, rows in sorted(records.items()):
        steps = [r["gain"] / r["tier_step"] for r in rows if r["tier_step"] > 0]
        out[quirk] = {
            "tasks": len(rows),
            "carried": sum(r["carried"] for r in rows),
            "carried_rate": sum(r["carried"] for r in rows) / len(rows),
            "median_gain_in_steps": statistics.median(steps) if steps else float("nan"),
        }
    return out


def craft_seconds(store_url: str, limit: int) -> list[float]:
    """Wall seconds of the craft checks of up to `limit` bundles that have quirks."""
    store = open_store(store_url)
    seconds = []
    for task_id, version in store.latest_versions():
        manifest = store.read_manifest(task_id, version)
        if not manifest.get("crafts") or len(seconds) >= limit:
            continue
        with tempfile.TemporaryDirectory() as folder:
            work = Path(folder)
            for name in ("train.csv", "test.csv"):
                data = store.read_file(task_id, version, f"{PUBLIC}/{name}")
                (work / name).write_bytes(data)
            start = time.perf_counter()
            run_crafts(work, Recipe.model_validate(manifest["recipe"]))
            seconds.append(time.perf_counter() - start)
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default="./store")
    parser.add_argument("--summary", type=Path, help="`sandforge generate --json` output")
    parser.add_argument("--time", type=int, default=0, metavar="N")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    per_quirk = tally(args.store)
    total = sum(q["tasks"] for q in per_quirk.values())
    carried = sum(q["carried"] for q in per_quirk.values())
    report: dict = {"per_quirk": per_quirk, "quirks": total, "carried": carried}
    report["carried_rate"] = carried / total if total else float("nan")
    if args.summary:
        summary = json.loads(args.summary.read_text())
        report["median_crafts_seconds"] = summary.get("median_stage_seconds", {}).get("crafts")
    if args.time:
        seconds = craft_seconds(args.store, args.time)
        report["craft_seconds"] = seconds
        report["median_craft_seconds"] = statistics.median(seconds) if seconds else None
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    for quirk, row in per_quirk.items():
        print(
            f"{quirk:18} tasks {row['tasks']:3}  carried {row['carried']:3} "
            f"({row['carried_rate']:.0%})  median gain {row['median_gain_in_steps']:.2f} steps"
        )
    print(f"all quirks: {carried}/{total} carried ({report['carried_rate']:.0%})")
    if "median_crafts_seconds" in report:
        print(f"median crafts stage seconds (batch, all tasks): {report['median_crafts_seconds']}")
    if args.time:
        median = report["median_craft_seconds"]
        print(f"craft checks rerun on {len(seconds)} tasks with quirks: median {median} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
