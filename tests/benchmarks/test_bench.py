"""The benchmarks' helpers: bundle choice, verdicts, the fresh-process timers, and how the
concurrency benchmark turns repeated runs into one speedup."""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import pytest

# bench/ is a folder of the repo, not part of the installed package.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from sandforge.agents.recipe import FeatureColumn, NoiseSpec, Recipe, RuleSpec, TargetColumn
from sandforge.storage.bundle import MANIFEST
from sandforge.validators.evaluator import evaluator_config, render_evaluator, score_submission

from bench import concurrency
from bench import generation as bench
from sandforge.bundle_files import PRIVATE, PUBLIC

N_TRAIN, N_TEST = 80, 50
THRESHOLDS = {"gold": 5.0, "silver": 10.0, "bronze": 15.0, "median": 20.0}


def make_bundle(root: Path) -> Path:
    """A minimal regression bundle: public data, evaluator.py, answers, manifest."""
    recipe = Recipe(
        task_id="bench-task",
        seed_id="seed",
        domain="testing",
        title="Bench task",
        entity="row",
        task_type="regression",
        metric="rmse",
        id_column="row_id",
        features=[
            FeatureColumn(
                name="age", kind="numeric", description="age", role="signal", low=20, high=60
            ),
            FeatureColumn(name="owner", kind="boolean", description="owner", role="distractor"),
        ],
        targets=[
            TargetColumn(name="price", description="price", kind="continuous", center=50, scale=10)
        ],
        rule=RuleSpec(family="linear", signal_strength=1.0),
        noise=NoiseSpec(),
        n_train=N_TRAIN,
        n_test=N_TEST,
        rng_seed=3,
    )
    rng = random.Random(0)
    bundle = root / "bench-task" / "1"
    public, private = bundle / PUBLIC, bundle / PRIVATE
    public.mkdir(parents=True)
    private.mkdir(parents=True)

    def row(i: int) -> tuple[str, float, bool, float]:
        age = rng.uniform(20, 60)
        owner = rng.random() < 0.5
        return str(1000 + i), age, owner, round(age + 10 * owner + rng.gauss(0, 2), 3)

    train = [row(i) for i in range(N_TRAIN)]
    test = [row(i) for i in range(N_TRAIN, N_TRAIN + N_TEST)]
    (public / "train.csv").write_text(
        "row_id,age,owner,price\n" + "".join(f"{i},{a:.3f},{o},{p}\n" for i, a, o, p in train)
    )
    (public / "test.csv").write_text(
        "row_id,age,owner\n" + "".join(f"{i},{a:.3f},{o}\n" for i, a, o, _ in test)
    )
    (public / "sample_submission.csv").write_text(
        "row_id,price\n" + "".join(f"{i},50.0\n" for i, *_ in test)
    )
    (private / "answer.csv").write_text(
        "row_id,price\n" + "".join(f"{i},{p}\n" for i, *_, p in test)
    )
    config = evaluator_config(recipe, THRESHOLDS)
    (public / "evaluator.py").write_text(render_evaluator(config))
    sample = score_submission(config, public / "sample_submission.csv", private / "answer.csv")
    manifest = {
        "task_id": recipe.task_id,
        "version": 1,
        "recipe": recipe.model_dump(mode="json"),
        "baseline_scores": {"sample": round(sample, 6)},
    }
    (bundle / MANIFEST).write_text(json.dumps(manifest))
    return bundle


def test_pick_bundles_spreads_over_seeds() -> None:
    tasks = [
        {"seed_id": seed, "task_id": f"{seed}-{n}", "path": f"/store/{seed}-{n}/1"}
        for seed in ("b", "a")
        for n in range(3)
    ]
    picked = bench.pick_bundles(tasks, 3)
    assert [p.parent.name for p in picked] == ["a-0", "b-0", "a-1"]
    assert len(bench.pick_bundles(tasks, 10)) == 6


def test_verdicts_compare_in_the_right_direction() -> None:
    rows = {
        r["name"]: r["met"]
        for r in bench.verdicts(
            {"evaluator_seconds": 0.2, "strong_baseline_seconds": 1.0, "accepted_per_hour": 600}
        )
    }
    assert rows == {
        "evaluator_seconds": False,
        "strong_baseline_seconds": True,
        "accepted_per_hour": True,
    }
    assert all(r["met"] is None for r in bench.verdicts({}))


def test_spread_of_nothing_and_something() -> None:
    assert bench._spread([])["median"] is None
    spread = bench._spread([0.3, 0.1, 0.2])
    assert (spread["runs"], spread["median"], spread["min"], spread["max"]) == (3, 0.2, 0.1, 0.3)


def test_time_evaluator_runs_the_bundle_evaluator(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "store")
    result = bench.time_evaluator(bundle, 3, tmp_path)
    assert "error" not in result, result
    assert len(result["seconds"]) == 3
    assert result["score"] == result["manifest_score"]
    assert not (bundle / PUBLIC / "__pycache__").exists()  # ran on a copy


@pytest.mark.slow
def test_time_strong_baseline_scores_its_submission(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "store")
    result = bench.time_strong_baseline(bundle, 1, tmp_path)
    assert "error" not in result, result
    assert len(result["seconds"]) == len(result["process_seconds"]) == 1
    assert result["score"] < 10  # gradient boosting recovers most of a linear rule


def concurrency_run(slots: int, seconds: float, accepted: int = 20) -> dict:
    return {
        "slots": slots,
        "accepted": accepted,
        "candidates": accepted + 1,
        "reused": 0,
        "seconds": seconds,
        "accepted_per_hour": accepted * 3600 / seconds,
    }


def test_concurrency_speedup_compares_medians_of_repeated_runs() -> None:
    runs = [concurrency_run(1, s) for s in (100.0, 90.0, 200.0)]
    runs += [concurrency_run(2, s) for s in (50.0, 60.0, 40.0)]
    result = concurrency.report(runs)
    medians = {m["slots"]: m for m in result["medians"]}
    assert medians[1]["seconds"] == 100.0 and medians[2]["seconds"] == 50.0
    assert result["speedup"] == 2.0 and result["speedup_slots"] == 2 and result["met"]
    assert medians[1]["runs_accepted_per_hour"] == [720.0, 800.0, 360.0]


def test_concurrency_speedup_below_target_is_reported_missed() -> None:
    result = concurrency.report([concurrency_run(1, 100.0), concurrency_run(2, 70.0)])
    assert result["speedup"] == 1.43 and not result["met"]


def test_concurrency_rejects_bad_slot_counts(capsys: pytest.CaptureFixture[str]) -> None:
    assert concurrency.main(["--slots", "1,two"]) == concurrency.EXIT_BAD_INPUT
    assert "--slots" in capsys.readouterr().err
