"""The bootstrap standard error of a submission's score, on the evaluator's own scorers."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
from sandforge.validators.noise import bootstrap_se

N = 2000


def _config(metric: str, targets: list[str], columns: list[str], classes=None) -> dict:
    config = {
        "metric": metric,
        "id_column": "id",
        "target_columns": targets,
        "submission_columns": ["id", *columns],
        "is_lower_better": False,
        "thresholds": {"gold": 0.0, "silver": 0.0, "bronze": 0.0, "median": 0.0},
    }
    if classes:
        config["classes"] = classes
    return config


def _write(path: Path, header: list[str], rows: list[list]) -> Path:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _accuracy_task(tmp_path: Path, p_right: float) -> tuple[dict, Path, Path]:
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 2, N)
    right = rng.random(N) < p_right
    predicted = np.where(right, truth, 1 - truth)
    ids = [f"r{i}" for i in range(N)]
    answers = _write(
        tmp_path / "answer.csv", ["id", "y"], [[i, t] for i, t in zip(ids, truth, strict=True)]
    )
    submission = _write(
        tmp_path / "sub.csv", ["id", "y"], [[i, p] for i, p in zip(ids, predicted, strict=True)]
    )
    return _config("accuracy", ["y"], ["y"], {"y": ["0", "1"]}), submission, answers


def test_accuracy_se_matches_the_binomial_formula(tmp_path: Path) -> None:
    """200 resamples estimate sqrt(p(1-p)/n) to within 15% (sampling error of an SD ~5%)."""
    config, submission, answers = _accuracy_task(tmp_path, 0.8)
    se = bootstrap_se(config, submission, answers, seed=3)
    assert se == pytest.approx(math.sqrt(0.8 * 0.2 / N), rel=0.15)


def test_deterministic_in_the_seed(tmp_path: Path) -> None:
    config, submission, answers = _accuracy_task(tmp_path, 0.7)
    first = bootstrap_se(config, submission, answers, seed=11)
    assert bootstrap_se(config, submission, answers, seed=11) == first
    assert bootstrap_se(config, submission, answers, seed=12) != first


def test_a_perfect_submission_has_no_noise(tmp_path: Path) -> None:
    config, _, answers = _accuracy_task(tmp_path, 0.7)
    assert bootstrap_se(config, answers, answers, seed=0) == 0.0


def test_noise_shrinks_with_more_rows(tmp_path: Path) -> None:
    """The reason test sets are sized per metric: SE falls as 1/sqrt(n)."""
    rng = np.random.default_rng(1)
    ses = []
    for n in (250, 4000):
        truth = rng.normal(0, 1, n)
        predicted = truth + rng.normal(0, 1, n)
        ids = [f"r{i}" for i in range(n)]
        folder = tmp_path / str(n)
        folder.mkdir()
        answers = _write(
            folder / "a.csv", ["id", "y"], [[i, t] for i, t in zip(ids, truth, strict=True)]
        )
        sub = _write(
            folder / "s.csv", ["id", "y"], [[i, p] for i, p in zip(ids, predicted, strict=True)]
        )
        ses.append(bootstrap_se(_config("rmse", ["y"], ["y"]), sub, answers, seed=0, resamples=100))
    assert ses[1] < ses[0] / 2.5  # 1/sqrt(16) = 1/4 in expectation


@pytest.mark.parametrize(
    "metric", ["roc_auc", "log_loss", "mean_columnwise_roc_auc", "multiclass_log_loss", "mae"]
)
def test_every_submission_kind_is_resampled(tmp_path: Path, metric: str) -> None:
    rng = np.random.default_rng(2)
    n = 300
    ids = [f"r{i}" for i in range(n)]
    if metric == "multiclass_log_loss":
        labels = ["a", "b", "c"]
        truth = rng.integers(0, 3, n)
        proba = rng.dirichlet([1, 1, 1], n)
        config = _config(metric, ["y"], labels, {"y": labels})
        answer_rows = [[i, labels[t]] for i, t in zip(ids, truth, strict=True)]
        sub_rows = [[i, *row] for i, row in zip(ids, proba, strict=True)]
        answers = _write(tmp_path / "a.csv", ["id", "y"], answer_rows)
        sub = _write(tmp_path / "s.csv", ["id", *labels], sub_rows)
    elif metric == "mae":
        truth = rng.normal(0, 1, n)
        config = _config(metric, ["y"], ["y"])
        answers = _write(
            tmp_path / "a.csv", ["id", "y"], [[i, t] for i, t in zip(ids, truth, strict=True)]
        )
        sub = _write(
            tmp_path / "s.csv", ["id", "y"], [[i, t * 0.5] for i, t in zip(ids, truth, strict=True)]
        )
    else:
        targets = ["y", "z"] if metric.startswith("mean_") else ["y"]
        truth = rng.integers(0, 2, (n, len(targets)))
        scores = np.clip(truth * 0.3 + rng.random((n, len(targets))) * 0.7, 0, 1)
        config = _config(metric, targets, targets, {t: ["0", "1"] for t in targets})
        answers = _write(
            tmp_path / "a.csv", ["id", *targets], [[i, *t] for i, t in zip(ids, truth, strict=True)]
        )
        sub = _write(
            tmp_path / "s.csv",
            ["id", *targets],
            [[i, *s] for i, s in zip(ids, scores, strict=True)],
        )
    se = bootstrap_se(config, sub, answers, seed=0, resamples=50)
    assert 0 < se < 0.5


@pytest.mark.parametrize("metric", ["accuracy", "log_loss"])
def test_row_mean_shortcut_equals_rescoring_every_resample(
    tmp_path: Path, metric: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sandforge.validators import noise

    rng = np.random.default_rng(5)
    n = 400
    ids = [f"r{i}" for i in range(n)]
    truth = rng.integers(0, 2, n)
    predicted = rng.random(n) if metric == "log_loss" else rng.integers(0, 2, n)
    config = _config(metric, ["y"], ["y"], {"y": ["0", "1"]})
    answers = _write(
        tmp_path / "a.csv", ["id", "y"], [[i, t] for i, t in zip(ids, truth, strict=True)]
    )
    sub = _write(
        tmp_path / "s.csv", ["id", "y"], [[i, p] for i, p in zip(ids, predicted, strict=True)]
    )
    fast = bootstrap_se(config, sub, answers, seed=4, resamples=60)
    monkeypatch.setattr(noise, "ROW_MEANS", frozenset())
    assert bootstrap_se(config, sub, answers, seed=4, resamples=60) == pytest.approx(fast, rel=1e-9)
