"""The main job end to end, as a user runs it: `sandforge generate` in a fresh process.

One small batch (shared by every test here) goes through the real flow on ephemeral
Prefect, the real sandbox and the real evaluator; the tests then check what the issue
promises of every accepted bundle.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sandforge.storage.bundle import MANIFEST, PUBLIC_FILES, verify_bundle

from sandforge.bundle_files import PRIVATE, PUBLIC

pytestmark = pytest.mark.slow

SEEDS = "spaceship-titanic,nomad2018-predict-transparent-conductors,playground-series-s3e18"
PER_SEED = 2
SANDFORGE = [sys.executable, "-m", "sandforge.cli"]


def sandforge(*args: str, check: bool = True, env: dict | None = None):
    result = subprocess.run(
        [*SANDFORGE, *args],
        capture_output=True,
        text=True,
        timeout=600,
        # Build every candidate: results cached by earlier runs would hide nondeterminism.
        env={**os.environ, "PREFECT_TASKS_REFRESH_CACHE": "true", **(env or {})},
    )
    if check and result.returncode != 0:
        raise AssertionError(f"sandforge {args} exited {result.returncode}:\n{result.stderr}")
    return result


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    store = tmp_path_factory.mktemp("store")
    result = sandforge(
        "generate", "--seeds", SEEDS, "--per-seed", str(PER_SEED), "--store", str(store), "--json"
    )
    return store, json.loads(result.stdout)


@pytest.fixture(scope="module")
def bundles(batch: tuple[Path, dict]) -> list[Path]:
    _, summary = batch
    return [Path(t["path"]) for t in summary["tasks"]]


def test_batch_meets_its_quota_with_a_recorded_funnel(batch):
    _, summary = batch
    assert summary["accepted"] == PER_SEED * len(SEEDS.split(","))
    assert summary["short_of_quota"] == {}
    assert summary["candidates"] == summary["accepted"] + summary["rejected"]
    assert len(summary["rejections"]) == summary["rejected"]
    for rejection in summary["rejections"]:
        assert rejection["stage"] and rejection["reason"]
    assert {"synthesize", "baselines", "evaluator_contract"} <= set(summary["median_stage_seconds"])


def test_accepted_tasks_are_distinct(batch):
    _, summary = batch
    keys = [(t["domain"], t["metric"], t["rule_family"]) for t in summary["tasks"]]
    manifests = [json.loads((Path(t["path"]) / MANIFEST).read_text()) for t in summary["tasks"]]
    distinct = [tuple(m["distinct_key"]) for m in manifests]
    assert len(set(distinct)) == len(distinct), keys


def test_every_bundle_verifies_and_has_the_promised_layout(bundles):
    for bundle in bundles:
        manifest = verify_bundle(bundle)
        public = sorted(p.name for p in (bundle / PUBLIC).iterdir())
        assert public == sorted(PUBLIC_FILES)
        assert [p.name for p in (bundle / PRIVATE).iterdir()] == ["answer.csv"]
        assert isinstance(manifest["recipe"]["rng_seed"], int)
        with (bundle / PUBLIC / "train.csv").open() as f:
            train_rows = sum(1 for _ in csv.reader(f)) - 1
        assert 50 <= train_rows <= 200


def test_public_folder_leaks_neither_answers_nor_recipe(bundles):
    for bundle in bundles:
        manifest = json.loads((bundle / MANIFEST).read_text())
        recipe = manifest["recipe"]
        id_column = recipe["id_column"]
        targets = [t["name"] for t in recipe["targets"]]
        with (bundle / PUBLIC / "test.csv").open() as f:
            header = next(csv.reader(f))
        assert not set(targets) & set(header), "test.csv carries the target"
        answers = (bundle / PRIVATE / "answer.csv").read_bytes()
        public_text = b"".join(p.read_bytes() for p in (bundle / PUBLIC).iterdir())
        assert answers not in public_text
        sample = (bundle / PUBLIC / "sample_submission.csv").read_bytes()
        assert sample != answers
        description = (bundle / PUBLIC / "description.md").read_text().lower()
        assert recipe["rule"]["family"] not in description
        assert "rng_seed" not in public_text.decode()
        assert id_column in description


def test_thresholds_are_ordered_and_the_sample_is_below_median(bundles):
    for bundle in bundles:
        manifest = json.loads((bundle / MANIFEST).read_text())
        sign = -1 if manifest["is_lower_better"] else 1
        t = {k: sign * v for k, v in manifest["thresholds"].items()}
        assert t["median"] < t["bronze"] < t["silver"] < t["gold"]
        scores = {k: sign * v for k, v in manifest["baseline_scores"].items()}
        assert scores["sample"] < t["median"]
        assert scores["oracle"] >= t["gold"]


def _evaluate(public: Path, submission: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "evaluator.py", "--submission_path", str(submission)],
        cwd=public,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_evaluator_contract_holds_for_every_bundle(bundles, tmp_path):
    for bundle in bundles:
        manifest = json.loads((bundle / MANIFEST).read_text())
        public = bundle / PUBLIC
        result = _evaluate(public, public / "sample_submission.csv")
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        assert set(report) == {
            "score",
            "is_lower_better",
            "gold_threshold",
            "silver_threshold",
            "bronze_threshold",
            "median_threshold",
        }
        assert report["score"] == pytest.approx(manifest["baseline_scores"]["sample"], abs=1e-6)
        assert report["is_lower_better"] is manifest["is_lower_better"]
        for tier in ("gold", "silver", "bronze", "median"):
            assert report[f"{tier}_threshold"] == manifest["thresholds"][tier]
        lines = (public / "sample_submission.csv").read_text().splitlines(keepends=True)
        short = tmp_path / f"{manifest['task_id']}-short.csv"
        short.write_text("".join(lines[:-1]))
        invalid = _evaluate(public, short)
        assert invalid.returncode != 0
        assert invalid.stderr.strip() or invalid.stdout.strip()


def test_regenerate_reproduces_the_content_hash(bundles):
    result = sandforge("regenerate", str(bundles[0]), "--json")
    report = json.loads(result.stdout)
    assert report["identical"] is True
    assert report["actual_hash"] == json.loads((bundles[0] / MANIFEST).read_text())["content_hash"]


def test_inspect_and_tampering(bundles, tmp_path):
    copy = tmp_path / "bundle"
    shutil.copytree(bundles[0], copy)
    shown = json.loads(sandforge("inspect", str(copy), "--json").stdout)
    assert shown["task_id"] == json.loads((bundles[0] / MANIFEST).read_text())["task_id"]
    train = copy / PUBLIC / "train.csv"
    train.write_text(train.read_text().replace(",", ";", 1))
    result = sandforge("inspect", str(copy), check=False)
    assert result.returncode == 1
    assert "train.csv" in result.stderr


def test_same_batch_seed_gives_byte_identical_bundles(batch, tmp_path):
    _, summary = batch
    first_seed = SEEDS.split(",")[0]
    again = tmp_path / "again"
    result = sandforge(
        "generate", "--seeds", first_seed, "--per-seed", "1", "--store", str(again), "--json"
    )
    redo = json.loads(result.stdout)["tasks"][0]
    original = next(t for t in summary["tasks"] if t["seed_id"] == first_seed)
    assert redo["task_id"] == original["task_id"]
    a, b = Path(original["path"]), Path(redo["path"])
    for path in sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file()):
        if path.name != MANIFEST:
            assert (a / path).read_bytes() == (b / path).read_bytes(), path
    hashes = [json.loads((p / MANIFEST).read_text())["content_hash"] for p in (a, b)]
    assert hashes[0] == hashes[1]


def test_export_sandmle_layout(batch, tmp_path):
    store, summary = batch
    out = tmp_path / "sandmle"
    listing = json.loads(
        sandforge("export", "--store", str(store), "--out", str(out), "--json").stdout
    )
    ids = json.loads((out / "ok_competitions_sanity.json").read_text())
    assert ids == sorted(t["task_id"] for t in summary["tasks"]) == listing["task_ids"]
    sample = json.loads((out / "ok_competitions_sanity_random_64.json").read_text())
    assert set(sample) <= set(ids)
    for task_id in ids:
        public = out / task_id / "prepared" / "public"
        assert (public / "description.md").is_file()
        assert not (public / "answer.csv").exists()
        result = _evaluate(public, public / "sample_submission.csv")
        assert result.returncode == 0, result.stderr
