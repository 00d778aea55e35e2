"""What every baseline script shares: reading task.json and the tables, writing submission.csv.

The scripts run by path in a sandbox as standalone programs, not as package modules, so each
one puts its own folder on sys.path and imports this file as `_common`. Only the standard
library is imported at module level: the trivial baseline must start fast, so pandas is
imported inside the functions that need it.
"""

from __future__ import annotations

import csv
import json
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TRUE_STRINGS = {"true", "1"}
FALSE_STRINGS = {"false", "0"}


@dataclass(frozen=True)
class Task:
    id_column: str
    targets: list[str]
    submission_columns: list[str]
    kind: str  # a validators.metrics.SubmissionKind value
    classes: dict[str, list[str]]
    features: dict[str, str]  # name -> numeric | integer | categorical | boolean
    nonnegative: frozenset[str]
    metric: str  # the task's metric (validators.metrics name); solvers may tune for it
    # the seed's quirks as the description states them: {"quirk", "craft", "columns": {name:
    # datetime | latitude | longitude | code | numeric}}; crafted.py applies their crafts
    quirks: list[dict[str, Any]] = field(default_factory=list)

    def positive(self, target: str) -> str:
        """The label whose probability a "probability" submission holds (binary: "1")."""
        return self.classes.get(target, ["0", "1"])[-1]


def load_task(folder: Path = Path()) -> Task:
    spec = json.loads((folder / "task.json").read_text())
    return Task(
        id_column=spec["id_column"],
        targets=list(spec["target_columns"]),
        submission_columns=list(spec["submission_columns"]),
        kind=spec["submission_kind"],
        classes={t: [str(c) for c in labels] for t, labels in spec.get("classes", {}).items()},
        features=dict(spec["features"]),
        nonnegative=frozenset(spec.get("nonnegative_targets", [])),
        metric=spec["metric"],
        quirks=list(spec.get("quirks", [])),
    )


def read_columns(path: Path, columns: Sequence[str]) -> dict[str, list[str]]:
    """Raw cells of some columns, as strings (standard library only)."""
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return {c: [row[c] for row in rows] for c in columns}


def prior(task: Task, target: str, values: Sequence[str]) -> dict[str, Any]:
    """The constant prediction of the training prior for one target, per submission column."""
    if task.kind == "value":
        return {target: clip(task, target, math.fsum(map(float, values)) / len(values))}
    counts = Counter(values)
    classes = task.classes.get(target, sorted(counts))
    if task.kind == "label":
        return {target: max(classes, key=lambda c: counts[c])}  # ties: first in class order
    if task.kind == "probability":
        return {target: counts[task.positive(target)] / len(values)}
    return {c: counts[c] / len(values) for c in classes}


def clip(task: Task, target: str, value: float) -> float:
    return max(value, 0.0) if target in task.nonnegative else value


def write_submission(
    task: Task, ids: Sequence[str], columns: dict[str, Any], out: str = "submission.csv"
) -> None:
    """Write `out`: ids in test order, then each column (a sequence or a constant)."""
    cells = [ids]
    for name in task.submission_columns[1:]:
        values = columns[name]
        if isinstance(values, str | int | float):
            values = [values] * len(ids)
        cells.append([v if isinstance(v, str) else repr(float(v)) for v in values])
    with Path(out).open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(task.submission_columns)
        writer.writerows(zip(*cells, strict=True))


def load_frames(task: Task, text: Sequence[str] = ()) -> tuple[Any, Any, list[str]]:
    """(train, test as typed DataFrames with every column, test ids); train keeps the targets.

    Categoricals stay strings and booleans become 0/1; missing cells are NaN. Targets of
    classification tasks are read as strings so they match the class labels exactly, and so
    are the `text` columns (timestamps and codes, for their crafts).
    """
    import numpy as np
    import pandas as pd

    as_text = [task.id_column, *(n for n, k in task.features.items() if k != "numeric"), *text]
    if task.kind != "value":
        as_text += task.targets
    options = {"dtype": dict.fromkeys(as_text, str), "keep_default_na": False, "na_values": [""]}
    train = pd.read_csv("train.csv", **options)
    test = pd.read_csv("test.csv", **options)
    ids = test[task.id_column].tolist()
    for frame in (train, test):
        for name, kind in task.features.items():
            column = frame[name]
            if kind == "categorical":
                frame[name] = column.astype(object).where(column.notna(), np.nan)
            elif kind == "boolean":
                lowered = column.str.strip().str.lower()
                frame[name] = np.where(
                    lowered.isin(TRUE_STRINGS),
                    1.0,
                    np.where(lowered.isin(FALSE_STRINGS), 0.0, np.nan),
                )
            else:
                frame[name] = pd.to_numeric(column, errors="coerce").astype(float)
    return train, test, ids


def solve_each_target(
    task: Task,
    solve_values: Callable[[str, Any, Any, Any], dict[str, Any]],
    solve_classes: Callable[[str, Any, Any, Any], dict[str, Any]],
    frames: tuple[Any, Any, list[str]] | None = None,
) -> None:
    """Per target, `solve_*(target, x_train, y_train, x_test)` gives its submission columns;
    write submission.csv. A classification target with a single training class gets the
    prior: no model can fit it. `frames` (train, test, ids) default to load_frames(task)."""
    train, test, ids = frames or load_frames(task)
    x_train, test = train[list(task.features)], test[list(task.features)]
    columns: dict[str, Any] = {}
    for target in task.targets:
        y = train[target]
        if task.kind == "value":
            columns.update(solve_values(target, x_train, y, test))
        elif y.nunique() < 2:
            columns.update(prior(task, target, y.tolist()))
        else:
            columns.update(solve_classes(target, x_train, y, test))
    write_submission(task, ids, columns)


def fit_predict(
    task: Task,
    make_classifier: Callable[[], Any],
    make_regressor: Callable[[], Any],
) -> None:
    """Fit one model per target on train.csv, predict test.csv, write submission.csv."""
    import numpy as np

    def values(target: str, x: Any, y: Any, test: Any) -> dict[str, Any]:
        predictions = make_regressor().fit(x, y.astype(float)).predict(test)
        if target in task.nonnegative:
            predictions = np.maximum(predictions, 0.0)
        return {target: predictions}

    def classes(target: str, x: Any, y: Any, test: Any) -> dict[str, Any]:
        model = make_classifier().fit(x, y)
        if task.kind == "label":
            return {target: [str(label) for label in model.predict(test)]}
        probabilities = dict(
            zip(map(str, model.classes_), model.predict_proba(test).T, strict=True)
        )
        zeros = np.zeros(len(test))
        if task.kind == "probability":
            return {target: probabilities.get(task.positive(target), zeros)}
        # class_probabilities: one column per label, 0 for labels absent from train
        return {c: probabilities.get(c, zeros) for c in task.classes[target]}

    solve_each_target(task, values, classes)


def linear_preprocessor(task: Task, splines: bool = False) -> Any:
    """Imputed, standardized numbers and booleans plus one-hot categoricals, for linear models;
    `splines` expands each number into a cubic B-spline basis (smooth non-linear effects)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, SplineTransformer, StandardScaler

    def of(*kinds: str) -> list[str]:
        return [name for name, kind in task.features.items() if kind in kinds]

    expand = SplineTransformer(n_knots=4, degree=3) if splines else "passthrough"
    return ColumnTransformer(
        [
            (
                "num",
                make_pipeline(SimpleImputer(strategy="median"), StandardScaler(), expand),
                of("numeric", "integer"),
            ),
            (
                "bool",
                make_pipeline(SimpleImputer(strategy="most_frequent"), StandardScaler()),
                of("boolean"),
            ),
            (
                "cat",
                make_pipeline(
                    SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")
                ),
                of("categorical"),
            ),
        ]
    )
