"""Benchmark the object store path: publish and pull throughput, catalog query latency.

    .venv/bin/python -m bench.storage [--bundles 100 --rows 10000 --json]

Against a real SeaweedFS server it starts in a temporary folder (storage/s3_server.py):

- publish: `--bundles` synthetic bundles of real-bundle size (~75 KB, 6 files, a rendered
  evaluator.py) through `publish_and_catalog`, `--publishers` at a time;
- pull: all of them with `storage.pulling.pull` into an empty folder (native layout: every
  file's sha256 checked, staging then rename), then the same pull again (all skipped);
- catalog: `--rows` rows in catalog.parquet plus one part per published bundle, queried with
  `storage.catalog.query` (what `sandforge catalog --where` runs): once with an empty cache,
  then each query `--repeat` times as one process repeats it (a listing, plus a DuckDB load
  only when the catalog changed), with the parts and after `compact`.

Benchmarks report, they do not gate: exit 0 whenever the run completed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from sandforge.tiers import TIERS

# name -> (target, "max": the measured value must stay at or below it)
TARGETS: dict[str, tuple[float, str]] = {
    "pull_seconds": (10.0, "max"),
    "catalog_query_ms": (100.0, "max"),
}
QUERIES = (  # what a trainer asks for: one task, a slice, a quality cut
    "task_id = 'bench-task-04242'",
    "domain = 'domain-4' AND metric = 'rmse' AND is_latest",
    "direction = 'higher' AND gold_threshold > 0.95",
)
DOMAINS = 20
err = Console(stderr=True)


def synthetic_bundle(index: int, evaluator: bytes) -> tuple[dict[str, Any], dict[str, bytes]]:
    """A bundle the size of a real one: 100 train rows, 375 test rows, 5 features."""
    from sandforge.storage.bundle import build_manifest

    from sandforge.bundle_files import PRIVATE, PUBLIC

    rng = random.Random(index)

    def table(header: list[str], rows: int, target: bool) -> bytes:
        lines = [",".join(header)]
        for row in range(rows):
            cells = [f"ID{index:05d}{row:04d}", *(f"{rng.uniform(0, 100):.3f}" for _ in range(5))]
            lines.append(",".join(cells + ([f"{rng.uniform(0, 10):.2f}"] if target else [])))
        return ("\n".join(lines) + "\n").encode()

    features = ["id", *(f"x{i}" for i in range(5))]
    answers = table(["id", "y"], 375, False)
    files = {
        f"{PUBLIC}/description.md": (f"# Bench task {index}\n\n" + "Predict y. " * 200).encode(),
        f"{PUBLIC}/evaluator.py": evaluator,
        f"{PUBLIC}/train.csv": table([*features, "y"], 100, True),
        f"{PUBLIC}/test.csv": table(features, 375, False),
        f"{PUBLIC}/sample_submission.csv": answers,
        f"{PRIVATE}/answer.csv": answers,
    }
    manifest = build_manifest(files, **_fields(index, rng))
    return manifest, files


def _fields(index: int, rng: random.Random) -> dict[str, Any]:
    lower = index % 2 == 0
    ladder = sorted(rng.uniform(0.1, 1.0) for _ in range(4))
    tiers = tuple(reversed(TIERS)) if lower else TIERS
    return {
        "task_id": f"bench-task-{index:05d}",
        "seed_id": "bench",
        "provider": {"name": "offline", "model": "procedural-v1"},
        "domain": f"domain-{index % DOMAINS}",
        "modality": "tabular",
        "task_type": "regression" if lower else "binary",
        "metric": "rmse" if lower else "roc_auc",
        "is_lower_better": lower,
        "thresholds": {tier: round(value, 6) for tier, value in zip(tiers, ladder, strict=True)},
        "baseline_scores": {"trivial": 1.0 if lower else 0.0, "oracle": 0.0 if lower else 1.0},
        "recipe": {"n_train": 100, "n_test": 375},
    }


def catalog_rows(count: int, first: int) -> list[dict[str, Any]]:
    """`count` catalog rows as if bundles `first`, `first + 1`, ... had been published."""
    from sandforge.storage.catalog import catalog_row

    rng = random.Random(0)
    created = dt.datetime(2026, 1, 1, tzinfo=dt.UTC).isoformat()
    files = {"prepared/public/train.csv": {"sha256": "0" * 64, "bytes": 14000}}
    return [
        catalog_row(
            {
                **_fields(index, rng),
                "version": 1,
                "files": files,
                "created_at": created,
                "content_hash": f"{index:064x}",
            }
        )
        for index in range(first, first + count)
    ]


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    value = action()
    return time.perf_counter() - started, value


def spread(seconds: list[float]) -> dict[str, float]:
    ordered = sorted(seconds)
    return {
        "median_ms": round(statistics.median(ordered) * 1000, 2),
        "p90_ms": round(ordered[int(0.9 * (len(ordered) - 1))] * 1000, 2),
        "max_ms": round(ordered[-1] * 1000, 2),
    }


def measure_queries(run: Callable[[str], list], repeat: int) -> dict[str, dict[str, Any]]:
    """Per query: rows returned and the spread of `repeat` timed runs."""
    figures = {}
    for where in QUERIES:
        seconds = [timed(lambda where=where: run(where))[0] for _ in range(repeat)]
        figures[where] = {"rows": len(run(where)), **spread(seconds)}
    return figures


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    from sandforge.storage import s3_server
    from sandforge.storage.catalog import (
        CATALOG,
        compact,
        parquet_bytes,
        publish_and_catalog,
        query,
    )
    from sandforge.storage.pulling import pull, select
    from sandforge.storage.s3 import S3Store
    from sandforge.validators.evaluator import render_evaluator

    status = s3_server.up(workdir / "s3", port=s3_server.free_port())
    os.environ.update(status.env())
    try:
        store = S3Store("bench", "bundles")
        store.create_bucket()
        config = {
            "metric": "rmse",
            "id_column": "id",
            "target_columns": ["y"],
            "submission_columns": ["id", "y"],
            "is_lower_better": True,
            "thresholds": {"gold": 0.1, "silver": 0.2, "bronze": 0.3, "median": 0.4},
        }
        evaluator = render_evaluator(config).encode()
        bundles = [synthetic_bundle(i, evaluator) for i in range(args.bundles)]
        size = sum(len(data) for _, files in bundles for data in files.values())

        with ThreadPoolExecutor(args.publishers) as pool:
            publish_s, _ = timed(
                lambda: list(pool.map(lambda b: publish_and_catalog(store, *b), bundles))
            )
        out = workdir / "pulled"
        pull_s, result = timed(lambda: pull(store, select(store), out, workers=args.workers))
        again_s, again = timed(lambda: pull(store, select(store), out, workers=args.workers))
        assert len(result.pulled) == args.bundles and len(again.skipped) == args.bundles

        store.put_object(CATALOG, parquet_bytes(catalog_rows(args.rows, first=args.bundles)))
        cache = workdir / "cache"
        cold_s, _ = timed(lambda: query(store, QUERIES[0], cache_dir=cache))
        total = len(query(store, cache_dir=cache))
        with_parts = measure_queries(lambda q: query(store, q, cache_dir=cache), args.repeat)
        compact(store)
        compacted = measure_queries(lambda q: query(store, q, cache_dir=cache), args.repeat)
        return {
            "bundles": args.bundles,
            "bundle_bytes": size,
            "publish_seconds": round(publish_s, 3),
            "publish_bundles_per_second": round(args.bundles / publish_s, 1),
            "publish_mb_per_second": round(size / publish_s / 1e6, 2),
            "pull_seconds": round(pull_s, 3),
            "pull_bundles_per_second": round(args.bundles / pull_s, 1),
            "pull_mb_per_second": round(result.bytes / pull_s / 1e6, 2),
            "pull_again_seconds": round(again_s, 3),
            "catalog_rows": total,
            "catalog_cold_query_ms": round(cold_s * 1000, 2),
            "catalog_queries": {"with_parts": with_parts, "compacted": compacted},
            "catalog_query_ms": max(  # the slowest query's median, either state
                figure["median_ms"] for runs in (with_parts, compacted) for figure in runs.values()
            ),
            "workers": args.workers,
            "publishers": args.publishers,
            "cores": len(os.sched_getaffinity(0)),
        }
    finally:
        s3_server.down(workdir / "s3")


def verdicts(report: dict[str, Any]) -> dict[str, bool]:
    return {
        name: report[name] <= target if kind == "max" else report[name] >= target
        for name, (target, kind) in TARGETS.items()
    }


def print_report(report: dict[str, Any]) -> None:
    table = Table(title=f"storage benchmark: {report['bundles']} bundles, SeaweedFS on 127.0.0.1")
    for column in ("figure", "value", "target"):
        table.add_column(column)
    ok = verdicts(report)
    mb = report["bundle_bytes"] / 1e6

    def row(name: str, value: str, figure: str | None = None) -> None:
        target = ""
        if figure in TARGETS:
            limit, _ = TARGETS[figure]
            target = f"<= {limit:g} {'met' if ok[figure] else 'MISSED'}"
        table.add_row(name, value, target)

    row(
        "publish",
        f"{report['publish_seconds']} s: {report['publish_bundles_per_second']} bundles/s, "
        f"{report['publish_mb_per_second']} MB/s ({mb:.1f} MB, {report['publishers']} publishers)",
    )
    row(
        "pull (verified)",
        f"{report['pull_seconds']} s: {report['pull_bundles_per_second']} bundles/s, "
        f"{report['pull_mb_per_second']} MB/s ({report['workers']} threads)",
        "pull_seconds",
    )
    row("pull again (all skipped)", f"{report['pull_again_seconds']} s")
    row("catalog rows", str(report["catalog_rows"]))
    row("catalog query, cold cache", f"{report['catalog_cold_query_ms']} ms")
    for state, runs in report["catalog_queries"].items():
        for where, figure in runs.items():
            row(
                f"query ({state.replace('_', ' ')}): {where}",
                f"{figure['rows']} rows: median {figure['median_ms']} ms, "
                f"p90 {figure['p90_ms']} ms",
            )
    row("catalog query, slowest median", f"{report['catalog_query_ms']} ms", "catalog_query_ms")
    Console().print(table)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.storage", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--bundles", type=int, default=100, help="bundles to publish and pull")
    parser.add_argument("--rows", type=int, default=10_000, help="catalog rows to query")
    parser.add_argument("--workers", type=int, default=16, help="pull threads (16)")
    parser.add_argument("--publishers", type=int, default=8, help="concurrent publishers (8)")
    parser.add_argument("--repeat", type=int, default=10, help="runs of each query (10)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="sandforge-bench-storage-") as folder:
        if not args.json:
            err.print(f"publishing {args.bundles} bundles to a fresh SeaweedFS server...")
        report = run(args, Path(folder))
    report["targets_met"] = verdicts(report)
    if args.json:
        from sandforge.commands.output import print_json

        print_json(report)
    else:
        print_report(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
