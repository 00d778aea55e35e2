"""The storage benchmark runs end to end on a small scale and reports every figure."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # bench/ is not installed
from bench import storage as bench


def test_a_small_run_reports_every_figure(capsys: pytest.CaptureFixture) -> None:
    assert bench.main(["--bundles", "4", "--rows", "200", "--repeat", "2", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["bundles"] == 4 and report["catalog_rows"] == 204
    assert report["pull_seconds"] > 0 and report["pull_again_seconds"] > 0
    assert set(report["targets_met"]) == {"pull_seconds", "catalog_query_ms"}
    for state in ("with_parts", "compacted"):
        assert set(report["catalog_queries"][state]) == set(bench.QUERIES)
    one_task = report["catalog_queries"]["compacted"][bench.QUERIES[0]]
    assert one_task["rows"] == 0  # bench-task-04242 is beyond 204 rows


def test_synthetic_bundles_are_real_bundle_sized() -> None:
    from sandforge.storage.bundle import check_manifest

    manifest, files = bench.synthetic_bundle(7, b"x" * 18_000)  # evaluator.py is ~18 KB
    check_manifest(manifest)
    assert 70_000 < sum(map(len, files.values())) < 90_000  # a real bundle: ~75 KB
    assert manifest["task_id"] == "bench-task-00007" and len(files) == 6
