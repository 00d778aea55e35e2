"""One comparison everywhere: every attainable accuracy k/n of real generated tasks gets the same
score and the same tier from each grader we ship.

Per task and per k (a submission with exactly k right labels; a grid of k from 0 to n_test plus
every k next to a threshold):
- evaluator.py, the bundle's own file, as SandMLE runs it (its JSON: score and thresholds);
- grade.py of the MLE-bench export, through MLE-bench's rules: round(score, 5), thresholds from
  leaderboard.csv by its rank rules, its medals;
- metric.py of the MLE-Dojo export (SandforgeMetrics.evaluate);
- `sandforge grade` (storage.consumer_grades.grade): its score, medals and SandMLE reward.
The tier is sandforge.tiers.tier_of: the best threshold reached, comparisons inclusive, as in
SandMLE's milestones and MLE-bench's medals. MLE-bench's `above_median` alone is strict
(CONTRACTS.md); the test proves that it differs from the median tier exactly where the score
equals the median threshold, and nowhere else.

The evaluator and wrappers run in process (~2,000 gradings); the scores at and beside every
threshold are run again as real `python evaluator.py` processes.
"""

from __future__ import annotations

import contextlib
import csv
import importlib.util
import io
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pandas as pd
import pytest
from generated_tasks import generate
from mlebench_rules import mlebench_score, mlebench_thresholds, rank_score
from sandforge.storage.bundle import MANIFEST
from sandforge.storage.consumer_grades import bundle_config, grade
from sandforge.storage.layouts.mlebench import MLEBench
from sandforge.storage.layouts.mledojo import MLEDojo

from sandforge.bundle_files import PRIVATE, PUBLIC
from sandforge.tiers import MEDALS, SANDMLE_REWARD, TIERS, VALID_REWARD, tier_of

pytestmark = pytest.mark.slow
GRID = 150  # accuracies checked per task besides those next to a threshold

# Binary and multiclass seeds; each gives one accepted accuracy task.
SEEDS = [
    "spaceship-titanic",
    "tabular-playground-series-dec-2021",
    "tabular-playground-series-may-2022",
]


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return generate(tmp_path_factory.mktemp("store"), SEEDS, metric="accuracy")


def load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def export(layout, bundle: Path, out: Path) -> None:
    manifest = json.loads((bundle / MANIFEST).read_text())
    files = {path: (bundle / path).read_bytes() for path in manifest["files"]}
    for path, data in layout.render(manifest, files).items():
        (out / path).parent.mkdir(parents=True, exist_ok=True)
        (out / path).write_bytes(data)


def submissions(bundle: Path) -> tuple[list[str], list[list[str]], int]:
    """(header, answer rows, n): submission k is the answers with rows k.. relabelled wrong."""
    config = bundle_config(bundle)
    with (bundle / PRIVATE / "answer.csv").open(newline="") as handle:
        header, *rows = list(csv.reader(handle))
    assert header == config["submission_columns"]  # accuracy: one label column
    return header, rows, len(rows)


def write_k(path: Path, header: list[str], rows: list[list[str]], k: int, labels: list[str]):
    wrong = {label: labels[(i + 1) % len(labels)] for i, label in enumerate(labels)}
    lines = [header, *rows[:k], *([key, wrong[label]] for key, label in rows[k:])]
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows(lines)


def attainable(n: int, thresholds: dict[str, float]) -> list[int]:
    """The k of a grid of GRID accuracies from 0 to 1, plus every k within 2/n of a threshold:
    where graders could disagree (test sets have thousands of rows)."""
    grid = set(range(0, n + 1, max(1, n // GRID))) | {n}
    near = {k for k in range(n + 1) for v in thresholds.values() if abs(k / n - v) <= 2 / n}
    return sorted(grid | near)


def evaluator_json(module: ModuleType, submission: Path) -> dict:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert module.main(["--submission_path", str(submission)]) == 0
    return json.loads(out.getvalue())


def test_every_attainable_accuracy_gets_one_tier_everywhere(
    bundles: list[Path], tmp_path: Path
) -> None:
    assert len(bundles) == len(SEEDS)
    checked = 0
    for index, bundle in enumerate(bundles):
        manifest = json.loads((bundle / MANIFEST).read_text())
        assert manifest["metric"] == "accuracy"
        task_id, lower = manifest["task_id"], manifest["is_lower_better"]
        thresholds = manifest["thresholds"]
        out = tmp_path / task_id
        export(MLEBench(), bundle, out / "mlebench")
        export(MLEDojo(), bundle, out / "mledojo")
        competition = out / "mlebench" / "competitions" / task_id
        leaderboard = pd.read_csv(competition / "leaderboard.csv")
        derived = mlebench_thresholds(leaderboard)
        assert derived == {**thresholds, "is_lower_better": lower}
        evaluator = load(bundle / PUBLIC / "evaluator.py", f"evaluator_{index}")
        grade_py = load(competition / "grade.py", f"grade_{index}")
        metric_py = load(
            out / "mledojo" / "competitions" / task_id / "utils" / "metric.py", f"metric_{index}"
        )
        metrics = metric_py.SandforgeMetrics()
        answers = pd.read_csv(bundle / PRIVATE / "answer.csv")  # as MLE-bench reads it
        header, rows, n = submissions(bundle)
        labels = bundle_config(bundle)["classes"][header[1]]
        submission = tmp_path / "submission.csv"
        tiers_seen, boundary = set(), []
        for k in attainable(n, thresholds):
            write_k(submission, header, rows, k, labels)
            report = evaluator_json(evaluator, submission)
            sandmle_thresholds = {t: report[f"{t}_threshold"] for t in TIERS}
            assert sandmle_thresholds == thresholds
            score = report["score"]
            assert score == round(k / n, 5)
            frame = pd.read_csv(submission)
            mlebench = mlebench_score(grade_py.grade(frame, answers))
            dojo = metrics.evaluate(answers, frame)
            ours = grade(bundle, submission).report
            assert mlebench == dojo == ours["score"] == score, k

            tier = tier_of(score, thresholds, lower)
            medals = rank_score(mlebench, leaderboard)
            mlebench_medal = next((m for m in MEDALS if medals[f"{m}_medal"]), None)
            assert tier_of(mlebench, derived, lower) == tier
            assert tier_of(dojo, thresholds, lower) == tier
            assert mlebench_medal == (tier if tier in MEDALS else None)
            assert {m: ours[f"{m}_medal"] for m in MEDALS} == {
                m: medals[f"{m}_medal"] for m in MEDALS
            }
            assert ours["sandmle_reward"] == (
                VALID_REWARD if tier is None else SANDMLE_REWARD[tier]
            )
            # MLE-bench's strict "above median" is the one rule that differs, at equality only
            at_median = score == thresholds["median"]
            assert medals["above_median"] == ours["above_median"]
            assert medals["above_median"] == (tier is not None and not at_median)
            if any(abs(score - value) <= 1 / n for value in thresholds.values()):
                boundary.append(k)
            tiers_seen.add(tier)
            checked += 1
        assert tiers_seen == {None, *TIERS}, tiers_seen  # every tier is attainable
        # a replica of the pool (CV-selected on training rows) reaches gold, exactly
        assert thresholds["gold"] == manifest["baseline_scores"]["pool"]
        for k in boundary:  # the real subprocess agrees with the in-process run
            write_k(submission, header, rows, k, labels)
            run = subprocess.run(
                [sys.executable, "evaluator.py", "--submission_path", str(submission)],
                cwd=bundle / PUBLIC,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert run.returncode == 0, run.stderr
            assert json.loads(run.stdout) == evaluator_json(evaluator, submission)
    assert checked > 3 * GRID
