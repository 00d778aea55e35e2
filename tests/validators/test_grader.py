"""The evaluator template (every bundle's evaluator.py) scores exactly like scikit-learn, and its
copies of the registries (metric names and submission kinds, tier names, the reported precision)
agree with the originals: validators.metrics and sandforge.tiers."""

from __future__ import annotations

import ast
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from sandforge.validators import evaluator_template as template
from sandforge.validators.metrics import METRICS as CATALOGUE
from sklearn import metrics as skm

from sandforge import tiers

SEEDS = range(5)
N = 200


def _labels(rng: np.random.Generator, k: int, n: int = N) -> np.ndarray:
    """Imbalanced labels over k classes, every class present."""
    weights = rng.dirichlet(np.full(k, 0.7))
    labels = rng.choice(k, size=n, p=weights)
    labels[:k] = np.arange(k)
    return rng.permutation(labels)


def _noisy(rng: np.random.Generator, y: np.ndarray, k: int, keep: float = 0.6) -> np.ndarray:
    """Predictions that agree with y part of the time, otherwise random."""
    return np.where(rng.random(len(y)) < keep, y, rng.integers(0, k, len(y)))


def _binary(rng: np.random.Generator, n: int = N) -> np.ndarray:
    """0/1 labels: half the time Dirichlet-weighted, otherwise about 10% positive."""
    if rng.random() < 0.5:
        return _labels(rng, 2, n)
    y = (rng.random(n) < 0.1).astype(int)
    y[:2] = [0, 1]
    return y


def _tied_scores(rng: np.random.Generator, y: np.ndarray) -> np.ndarray:
    """Scores rounded to one decimal so many positives and negatives tie."""
    return np.clip(np.round(0.3 * y + rng.random(len(y)) * 0.7, 1), 0, 1)


def _probabilities(rng: np.random.Generator, y: np.ndarray, k: int) -> np.ndarray:
    """Normalised rows, some confident, some one-hot (exact zeros and ones)."""
    rows = rng.dirichlet(np.ones(k), size=len(y))
    rows[np.arange(len(y)), y] += rng.random(len(y)) * 2
    rows /= rows.sum(axis=1, keepdims=True)
    hard = rng.random(len(y)) < 0.1
    rows[hard] = np.eye(k)[rng.integers(0, k, hard.sum())]
    return rows


def _accuracy(rng):
    k = int(rng.integers(2, 7))
    y = _labels(rng, k)
    p = _noisy(rng, y, k)
    return (y, p), skm.accuracy_score(y, p)


def _macro_f1(rng):
    k = int(rng.integers(3, 7))
    y = _labels(rng, k)
    p = _noisy(rng, y, k, keep=0.4)
    p[p == k - 1] = 0  # a class never predicted
    y[y == k - 2] = 0  # a class predicted but never true
    return (y, p), skm.f1_score(y, p, average="macro")


def _roc_auc(rng):
    y = _binary(rng)
    s = _tied_scores(rng, y)
    return (y, s), skm.roc_auc_score(y, s)


def _log_loss(rng):
    y = _binary(rng)
    p = _probabilities(rng, y, 2)[:, 1]
    return (y, p), skm.log_loss(y, p, labels=[0, 1])


def _multiclass_log_loss(rng):
    k = int(rng.integers(3, 7))
    y = _labels(rng, k)
    p = _probabilities(rng, y, k)
    return (y, p), skm.log_loss(y, p, labels=list(range(k)))


def _quadratic_weighted_kappa(rng):
    k = int(rng.integers(3, 7))
    y = _labels(rng, k)
    p = np.clip(y + rng.integers(-1, 2, len(y)) * (rng.random(len(y)) < 0.5), 0, k - 1)
    return (y, p), skm.cohen_kappa_score(y, p, weights="quadratic", labels=list(range(k)))


def _values(rng, n: int = N, k: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    shape = (n,) if k is None else (n, k)
    y = rng.lognormal(2, 1, shape)
    return y, np.abs(y + rng.normal(0, 3, shape))


def _rmse(rng):
    y, p = _values(rng)
    return (y, p), skm.root_mean_squared_error(y, p)


def _mae(rng):
    y, p = _values(rng)
    return (y, p), skm.mean_absolute_error(y, p)


def _rmsle(rng):
    y, p = _values(rng)
    p[:5] = 0.0
    return (y, p), skm.root_mean_squared_log_error(y, p)


def _mean_columnwise_roc_auc(rng):
    y = np.column_stack([_binary(rng) for _ in range(int(rng.integers(2, 5)))])
    s = np.column_stack([_tied_scores(rng, col) for col in y.T])
    return (y, s), skm.roc_auc_score(y, s, average="macro")


def _mean_columnwise_rmse(rng):
    y, p = _values(rng, k=int(rng.integers(2, 5)))
    return (y, p), np.mean(skm.root_mean_squared_error(y, p, multioutput="raw_values"))


def _mean_columnwise_rmsle(rng):
    y, p = _values(rng, k=int(rng.integers(2, 5)))
    return (y, p), np.mean(skm.root_mean_squared_log_error(y, p, multioutput="raw_values"))


CASES: dict[str, Callable] = {
    "accuracy": _accuracy,
    "macro_f1": _macro_f1,
    "roc_auc": _roc_auc,
    "log_loss": _log_loss,
    "multiclass_log_loss": _multiclass_log_loss,
    "quadratic_weighted_kappa": _quadratic_weighted_kappa,
    "rmse": _rmse,
    "mae": _mae,
    "rmsle": _rmsle,
    "mean_columnwise_roc_auc": _mean_columnwise_roc_auc,
    "mean_columnwise_rmse": _mean_columnwise_rmse,
    "mean_columnwise_rmsle": _mean_columnwise_rmsle,
}


def test_every_template_metric_has_a_parity_case():
    assert set(CASES) == set(template.METRICS)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", sorted(CASES))
def test_metric_matches_sklearn(name: str, seed: int):
    rng = np.random.default_rng([seed, sorted(CASES).index(name)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn's zero-division warning in macro F1
        (y_true, y_pred), expected = CASES[name](rng)
    got = template.METRICS[name](y_true.tolist(), y_pred.tolist())
    assert isinstance(got, float)
    assert got == pytest.approx(float(expected), abs=1e-9, rel=0)


@pytest.mark.parametrize("seed", SEEDS)
def test_log_loss_renormalises_rows_that_do_not_sum_to_one(seed: int):
    rng = np.random.default_rng(seed)
    k = 4
    y = _labels(rng, k)
    rows = rng.uniform(0.01, 1.0, (len(y), k))  # valid cells; row sums anywhere in (0.04, 4)
    expected = skm.log_loss(y, rows / rows.sum(axis=1, keepdims=True), labels=list(range(k)))
    got = template.multiclass_log_loss(y.tolist(), rows.tolist())
    assert got == pytest.approx(expected, abs=1e-9, rel=0)


def test_log_loss_clips_certain_wrong_answers_instead_of_failing():
    assert template.log_loss([1, 0], [0.0, 1.0]) == pytest.approx(-np.log(np.finfo(float).eps))


def test_kappa_equals_sklearn_default_when_every_class_appears():
    rng = np.random.default_rng(11)
    y = _labels(rng, 5)
    p = _noisy(rng, y, 5)
    expected = skm.cohen_kappa_score(y, p, weights="quadratic")
    assert template.quadratic_weighted_kappa(y.tolist(), p.tolist()) == pytest.approx(expected)


def test_kappa_keeps_the_distance_of_a_class_nobody_used():
    # Class 2 of 0..3 is never used: 1 -> 3 is still two steps, as with labels=range(4).
    y, p = [0, 1, 3, 3, 0, 1, 3], [1, 1, 3, 1, 0, 3, 3]
    expected = skm.cohen_kappa_score(y, p, weights="quadratic", labels=[0, 1, 2, 3])
    assert template.quadratic_weighted_kappa(y, p) == pytest.approx(expected)
    assert expected != pytest.approx(skm.cohen_kappa_score(y, p, weights="quadratic"))


@pytest.mark.parametrize("metric", ["roc_auc", "quadratic_weighted_kappa"])
def test_metric_undefined_on_single_class_answers_raises(metric: str):
    with pytest.raises(ValueError, match="single class"):
        template.METRICS[metric]([1, 1, 1], [1, 1, 1])


def test_rmsle_rejects_negative_values():
    with pytest.raises(ValueError, match="non-negative"):
        template.rmsle([1.0, 2.0], [1.0, -0.5])


def test_template_metric_tables_are_the_registry():
    """The template stands alone, so it copies the registry's tables; they must not drift."""
    implemented = {name: info for name, info in CATALOGUE.items() if info.implemented}
    assert set(template.METRICS) == set(implemented)
    assert {n: str(i.submission) for n, i in implemented.items()} == template.KINDS
    assert not hasattr(template, "LOWER_IS_BETTER")  # the direction comes from CONFIG only
    for name, function in template.METRICS.items():
        assert function.__name__ == name  # the registry's scorer: the function of its name


def test_template_tiers_and_precision_are_the_core_ones():
    assert tuple(reversed(tiers.TIERS)) == template.THRESHOLD_KEYS
    assert template.DIGITS == tiers.DIGITS
    assert template.reported(0.123455000001) == round(0.123455000001, tiers.DIGITS) == 0.12346


def test_template_imports_only_the_standard_library():
    tree = ast.parse(Path(template.__file__).read_text(encoding="utf-8"))
    modules = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "relative import in the template"
            modules.add((node.module or "").split(".")[0])
    assert modules, "expected some imports"
    assert modules <= sys.stdlib_module_names, modules - sys.stdlib_module_names


def test_template_has_one_config_slot_and_one_answers_slot():
    lines = Path(template.__file__).read_text(encoding="utf-8").splitlines()
    assert lines.count("CONFIG = None") == 1
    assert lines.count('ANSWERS = "../private/answer.csv"') == 1


CONFIG = {
    "metric": "multiclass_log_loss",
    "id_column": "id",
    "target_columns": ["species"],
    "submission_columns": ["id", "ant", "bee", "cat"],
    "classes": {"species": ["ant", "bee", "cat"]},
    "is_lower_better": True,
    "thresholds": {"gold": 0.2, "silver": 0.3, "bronze": 0.4, "median": 0.6},
}
ANSWER_HEADER = ["id", "species"]
ANSWER_ROWS = [["1", "ant"], ["2", "cat"], ["3", "bee"], ["4", "ant"]]
SUBMISSION_HEADER = ["id", "ant", "bee", "cat"]
SUBMISSION_ROWS = [
    ["1", "0.7", "0.2", "0.1"],
    ["2", "0.1", "0.1", "0.8"],
    ["3", "0.3", "0.4", "0.3"],
    ["4", "0.5", "0.25", "0.25"],
]


def test_score_rows_matches_by_id_and_column_name_not_position():
    base = template.score_rows(
        CONFIG, SUBMISSION_HEADER, SUBMISSION_ROWS, ANSWER_HEADER, ANSWER_ROWS
    )
    order = [3, 0, 2, 1]  # columns cat, id, bee, ant
    header = [SUBMISSION_HEADER[i] for i in order]
    rows = [[row[i] for i in order] for row in reversed(SUBMISSION_ROWS)]
    assert template.score_rows(CONFIG, header, rows, ANSWER_HEADER, ANSWER_ROWS) == base
    y = [0, 2, 1, 0]
    probs = [[float(v) for v in row[1:]] for row in SUBMISSION_ROWS]
    assert base == pytest.approx(skm.log_loss(y, probs, labels=[0, 1, 2]), abs=1e-12)


def test_score_rows_blames_the_task_for_bad_answers():
    rows = [*ANSWER_ROWS[:3], ["4", "dog"]]
    with pytest.raises(ValueError, match="dog") as caught:
        template.score_rows(CONFIG, SUBMISSION_HEADER, SUBMISSION_ROWS, ANSWER_HEADER, rows)
    assert not isinstance(caught.value, template.InvalidSubmission)


def test_report_holds_the_score_direction_and_all_thresholds():
    assert template.report(CONFIG, 0.5) == {
        "score": 0.5,
        "is_lower_better": True,
        "gold_threshold": 0.2,
        "silver_threshold": 0.3,
        "bronze_threshold": 0.4,
        "median_threshold": 0.6,
    }
    assert template.report(CONFIG, 0.1234567)["score"] == 0.12346  # at MLE-bench's precision
