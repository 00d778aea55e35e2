"""Each baseline, run sandboxed, writes a valid submission for every kind of task it meets."""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sandforge.validators.baselines import (
    BASELINE_SCRIPTS,
    BaselineFailed,
    run_ladder,
    write_task_json,
)
from sklearn.metrics import accuracy_score, log_loss, mean_squared_error

pytestmark = pytest.mark.slow

N_TRAIN, N_TEST = 120, 60
INPUTS = {"train.csv", "test.csv", "sample_submission.csv", "task.json"}


@dataclass(frozen=True)
class Case:
    kind: str
    targets: dict[str, list[str] | None]  # class labels; None: a continuous target
    metric: str
    nonnegative: tuple[str, ...] = ()

    def submission_columns(self) -> list[str]:
        if self.kind == "class_probabilities":
            (labels,) = self.targets.values()
            return ["row_id", *(labels or [])]
        return ["row_id", *self.targets]


BINARY = ["0", "1"]
GRADES = ["low", "mid", "high"]
CASES = {
    "multiclass_label": Case("label", {"grade": GRADES}, "accuracy"),
    "ordinal_label": Case("label", {"grade": GRADES}, "quadratic_weighted_kappa"),
    "binary_label": Case("label", {"churn": BINARY}, "macro_f1"),
    "binary_probability": Case("probability", {"churn": BINARY}, "log_loss"),
    "multilabel_probability": Case(
        "probability", {"spam": BINARY, "urgent": BINARY}, "mean_columnwise_roc_auc"
    ),
    "class_probabilities": Case(
        "class_probabilities", {"species": ["ash", "birch", "cedar"]}, "multiclass_log_loss"
    ),
    "regression": Case("value", {"price": None}, "rmsle", nonnegative=("price",)),
    "regression_mae": Case("value", {"price": None}, "mae"),
    "two_target_regression": Case(
        "value", {"load": None, "yield_kg": None}, "mean_columnwise_rmse"
    ),
}


def build_task(folder: Path, case: Case, seed: int = 0) -> pd.DataFrame:
    """Write train/test/sample_submission/task.json with an easy signal; return the answers."""
    rng = np.random.default_rng(seed)
    n = N_TRAIN + N_TEST
    frame = pd.DataFrame(
        {
            "row_id": [f"{i:05d}" for i in rng.permutation(n) + 7],  # zero-padded, unsorted
            "size": rng.normal(0, 1, n).round(3),
            "rooms": rng.integers(0, 10, n),
            "color": rng.choice(["red", "green", "blue"], n),
            "fresh": rng.random(n) < 0.5,
            **{f"noise_{i}": rng.normal(0, 1, n).round(3) for i in range(3)},
        }
    )
    for i, target in enumerate(case.targets):
        sign = 1 if i % 2 == 0 else -1
        z = (
            sign * 2.0 * frame["size"]
            + 1.5 * (frame["color"] == "red")
            - 1.0 * frame["fresh"]
            + 0.1 * frame["rooms"]
            + rng.normal(0, 0.3, n)
        )
        labels = case.targets[target]
        if labels is None:
            values = 10 * np.exp(0.4 * z) if target in case.nonnegative else 5 + 3 * z
            frame[target] = values.round(3)
        else:
            cuts = np.quantile(z, np.linspace(0, 1, len(labels) + 1)[1:-1])
            frame[target] = [labels[k] for k in np.searchsorted(cuts, z)]
    text = frame.astype(object)
    text["fresh"] = frame["fresh"].map({True: "true", False: "false"})
    text.loc[3, "size"] = None  # missing cells of each kind, in train and test
    text.loc[5, "color"] = None
    text.loc[N_TRAIN + 2, "fresh"] = None
    text.loc[N_TRAIN + 4, "size"] = None
    features = ["size", "rooms", "color", "fresh", "noise_0", "noise_1", "noise_2"]
    train, test = text.iloc[:N_TRAIN], text.iloc[N_TRAIN:]
    train[["row_id", *features, *case.targets]].to_csv(folder / "train.csv", index=False)
    test[["row_id", *features]].to_csv(folder / "test.csv", index=False)
    columns = case.submission_columns()
    sample = pd.DataFrame({c: test["row_id"] if c == "row_id" else "0" for c in columns})
    sample.to_csv(folder / "sample_submission.csv", index=False)
    spec = {
        "id_column": "row_id",
        "target_columns": list(case.targets),
        "submission_columns": columns,
        "submission_kind": case.kind,
        "classes": {t: labels for t, labels in case.targets.items() if labels},
        "features": {
            "size": "numeric",
            "rooms": "integer",
            "color": "categorical",
            "fresh": "boolean",
            **{f"noise_{i}": "numeric" for i in range(3)},
        },
        "nonnegative_targets": list(case.nonnegative),
        "metric": case.metric,
    }
    (folder / "task.json").write_text(json.dumps(spec))
    return test[["row_id", *case.targets]].reset_index(drop=True)


@dataclass(frozen=True)
class Outcome:
    case: Case
    answers: pd.DataFrame
    submissions: dict[str, bytes]  # baseline -> its submission
    leftovers: set[str]  # files other than inputs, submissions and ladder.json


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    results = {}
    for name, case in CASES.items():
        folder = tmp_path_factory.mktemp(name)
        answers = build_task(folder, case)
        runs = run_ladder(folder)  # as the pipeline runs them: one sandboxed process
        submissions = {baseline: run.submission.read_bytes() for baseline, run in runs.items()}
        outputs = {f"submission_{baseline}.csv" for baseline in BASELINE_SCRIPTS} | {"ladder.json"}
        leftovers = {p.name for p in folder.iterdir()} - INPUTS - outputs
        results[name] = Outcome(case, answers, submissions, leftovers)
    return results


def read_submission(data: bytes) -> tuple[list[str], list[list[str]]]:
    header, *rows = csv.reader(data.decode().splitlines())
    return header, rows


@pytest.mark.parametrize("baseline", BASELINE_SCRIPTS)
@pytest.mark.parametrize("case_name", CASES)
def test_submission_is_valid(outcomes: dict[str, Outcome], case_name: str, baseline: str) -> None:
    outcome = outcomes[case_name]
    case = outcome.case
    header, rows = read_submission(outcome.submissions[baseline])
    assert header == case.submission_columns()
    assert [row[0] for row in rows] == outcome.answers["row_id"].tolist()
    assert outcome.leftovers == set()
    cells = [row[1:] for row in rows]
    if case.kind == "label":
        for values in cells:
            assert all(v in labels for v, labels in zip(values, case.targets.values(), strict=True))
        return
    numbers = np.array(cells, dtype=float)
    assert np.isfinite(numbers).all()
    if case.kind == "probability":
        assert ((numbers >= 0) & (numbers <= 1)).all()
    elif case.kind == "class_probabilities":
        assert (numbers >= 0).all()
        np.testing.assert_allclose(numbers.sum(axis=1), 1.0, atol=1e-9)
    else:
        for j, target in enumerate(case.targets):
            assert target not in case.nonnegative or (numbers[:, j] >= 0).all()


def loss(outcome: Outcome, baseline: str) -> float:
    """Lower is better, whatever the kind."""
    case, answers = outcome.case, outcome.answers
    predicted = pd.read_csv(io.BytesIO(outcome.submissions[baseline]), dtype={"row_id": str})
    if case.kind == "label":
        (target,) = case.targets
        return -accuracy_score(answers[target], predicted[target].astype(str))
    if case.kind == "probability":
        return float(
            np.mean(
                [
                    log_loss(answers[t].astype(int), predicted[t].clip(1e-6, 1 - 1e-6))
                    for t in case.targets
                ]
            )
        )
    if case.kind == "class_probabilities":
        ((target, labels),) = case.targets.items()
        probabilities = predicted[labels].clip(1e-6, 1).to_numpy()
        probabilities /= probabilities.sum(axis=1, keepdims=True)
        return log_loss(answers[target], probabilities, labels=labels)
    return float(
        np.mean([math.sqrt(mean_squared_error(answers[t], predicted[t])) for t in case.targets])
    )


@pytest.mark.parametrize("case_name", CASES)
def test_models_beat_trivial_on_an_easy_signal(
    outcomes: dict[str, Outcome], case_name: str
) -> None:
    outcome = outcomes[case_name]
    trivial = loss(outcome, "trivial")
    assert loss(outcome, "strong") < trivial
    assert loss(outcome, "simple") < trivial
    assert loss(outcome, "pool") < trivial


def rmsle(outcome: Outcome, baseline: str) -> float:
    predicted = pd.read_csv(io.BytesIO(outcome.submissions[baseline]), dtype={"row_id": str})
    truth = outcome.answers["price"].astype(float)
    return float(np.sqrt(np.mean((np.log1p(predicted["price"]) - np.log1p(truth)) ** 2)))


def test_pool_fits_the_metric(outcomes: dict[str, Outcome]) -> None:
    """RMSLE on a log-linear target: the pool fits log1p(y) and beats the raw-scale models."""
    outcome = outcomes["regression"]
    assert rmsle(outcome, "pool") < min(rmsle(outcome, "simple"), rmsle(outcome, "strong"))


def test_pool_predicts_each_test_row_from_training_alone(
    outcomes: dict[str, Outcome], tmp_path: Path
) -> None:
    """Dropping half the test rows changes no other row's prediction: the pool chose its model
    on training rows only, nothing was selected or fitted on the test set."""
    for name in ("ordinal_label", "regression_mae"):
        build_task(tmp_path, CASES[name])
        test = pd.read_csv(tmp_path / "test.csv", dtype=str, keep_default_na=False)
        test.iloc[::2].to_csv(tmp_path / "test.csv", index=False)
        half = run_ladder(tmp_path, ("pool",))["pool"].submission.read_bytes()
        header, rows = read_submission(half)
        full_header, full_rows = read_submission(outcomes[name].submissions["pool"])
        assert header == full_header
        assert rows == full_rows[::2]


@pytest.mark.parametrize("baseline", BASELINE_SCRIPTS)
def test_a_fresh_process_per_baseline_gives_the_ladder_bytes(
    outcomes: dict[str, Outcome], tmp_path: Path, baseline: str
) -> None:
    for name in ("class_probabilities", "two_target_regression"):
        build_task(tmp_path, CASES[name])
        again = run_ladder(tmp_path, (baseline,))[baseline].submission.read_bytes()
        assert again == outcomes[name].submissions[baseline]


def test_failure_reports_stderr(tmp_path: Path) -> None:
    build_task(tmp_path, CASES["regression"])
    (tmp_path / "train.csv").unlink()
    with pytest.raises(BaselineFailed, match=r"train\.csv") as failure:
        run_ladder(tmp_path, ("trivial",))
    assert failure.value.name == "trivial"


def test_ladder_failure_names_the_baseline(tmp_path: Path) -> None:
    build_task(tmp_path, CASES["regression"])
    (tmp_path / "train.csv").unlink()
    with pytest.raises(BaselineFailed, match=r"train\.csv") as failure:
        run_ladder(tmp_path)
    assert failure.value.name == "trivial"


def test_task_json_from_recipe(tmp_path: Path) -> None:
    from sandforge.agents.recipe import Recipe

    recipe = Recipe.model_validate(
        {
            "task_id": "forest-species-001",
            "seed_id": "seed",
            "domain": "forestry",
            "title": "Tree species",
            "entity": "tree",
            "task_type": "multiclass",
            "metric": "multiclass_log_loss",
            "id_column": "tree_id",
            "features": [
                {
                    "name": "height",
                    "kind": "numeric",
                    "description": "height",
                    "role": "signal",
                    "low": 1,
                    "high": 30,
                },
                {
                    "name": "soil",
                    "kind": "categorical",
                    "description": "soil",
                    "role": "distractor",
                    "categories": ["clay", "sand"],
                },
            ],
            "targets": [
                {
                    "name": "species",
                    "description": "species",
                    "kind": "categorical",
                    "classes": ["ash", "birch", "cedar"],
                }
            ],
            "rule": {"family": "linear", "signal_strength": 1.0},
            "noise": {},
            "n_train": 100,
            "n_test": 50,
            "rng_seed": 1,
        }
    )
    write_task_json(tmp_path, recipe)
    assert json.loads((tmp_path / "task.json").read_text()) == {
        "id_column": "tree_id",
        "target_columns": ["species"],
        "submission_columns": ["tree_id", "ash", "birch", "cedar"],
        "submission_kind": "class_probabilities",
        "classes": {"species": ["ash", "birch", "cedar"]},
        "features": {"height": "numeric", "soil": "categorical"},
        "nonnegative_targets": [],
        "metric": "multiclass_log_loss",
        "quirks": [],
    }
