"""What every solution policy shares: reading a task from its public files only.

A policy runs with cwd = a folder holding description.md, train.csv, test.csv and
sample_submission.csv, as a trainer's agent would, and nothing else of the bundle, so
everything here is inferred from those four files: the metric
from the description's Evaluation section, column types and meanings from its column table,
targets as the training columns test.csv lacks, the submission format from the sample.
The policies import only this file plus numpy/pandas/scikit-learn.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

# How a description names each metric, most specific first (the words an agent reads).
METRIC_PHRASES = (
    ("rmsle of each target", "mean_columnwise_rmsle"),
    ("rmse of each target", "mean_columnwise_rmse"),
    ("roc auc of each target", "mean_columnwise_roc_auc"),
    ("logarithmic error", "rmsle"),
    ("rmsle", "rmsle"),
    ("root mean squared error", "rmse"),
    ("rmse", "rmse"),
    ("mean absolute error", "mae"),
    ("multi-class log-loss", "multiclass_log_loss"),
    ("multiclass log", "multiclass_log_loss"),
    ("log-loss", "log_loss"),
    ("log loss", "log_loss"),
    ("roc curve", "roc_auc"),
    ("roc auc", "roc_auc"),
    ("quadratic weighted kappa", "quadratic_weighted_kappa"),
    ("macro-averaged f1", "macro_f1"),
    ("macro f1", "macro_f1"),
    ("accuracy", "accuracy"),
)
KINDS = {
    "accuracy": "label",
    "macro_f1": "label",
    "quadratic_weighted_kappa": "label",
    "roc_auc": "probability",
    "log_loss": "probability",
    "mean_columnwise_roc_auc": "probability",
    "multiclass_log_loss": "class_probabilities",
}
LOWER_IS_BETTER = {
    "rmse",
    "mae",
    "rmsle",
    "log_loss",
    "multiclass_log_loss",
    "mean_columnwise_rmse",
    "mean_columnwise_rmsle",
}
TRUE, FALSE = {"true", "1", "yes"}, {"false", "0", "no"}


@dataclass
class Public:
    description: str
    metric: str
    id_column: str
    targets: list[str]
    submission_columns: list[str]
    kind: str  # label | probability | class_probabilities | value
    classes: dict[str, list[str]]  # classification targets: labels, the positive one last
    features: dict[str, str]  # name -> numeric | categorical | boolean
    meanings: dict[str, str]
    units: dict[str, str]
    train: pd.DataFrame  # typed features and the targets (labels as strings)
    test: pd.DataFrame  # typed features
    ids: list[str]

    @property
    def lower_is_better(self) -> bool:
        return self.metric in LOWER_IS_BETTER

    def section(self, title: str) -> str:
        match = re.search(rf"^## {title}\s*$(.*?)(?=^## |\Z)", self.description, re.M | re.S)
        return match.group(1) if match else ""


def metric_of(description: str) -> str:
    text = description.lower()
    match = re.search(r"^## evaluation\s*$(.*?)(?=^## |\Z)", text, re.M | re.S)
    scope = match.group(1) if match else text
    for phrase, name in METRIC_PHRASES:
        if phrase in scope:
            return name
    raise SystemExit("cannot tell the metric from description.md")


def _column_table(description: str) -> dict[str, tuple[str, str, str]]:
    """`| name | type | unit | meaning |` rows -> name: (type, unit, meaning)."""
    rows = {}
    for line in description.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 4 and cells[0].startswith("`") and cells[0].endswith("`"):
            rows[cells[0].strip("`")] = (cells[1], cells[2], " | ".join(cells[3:]))
    return rows


def _labels(description: str, target: str) -> list[str] | None:
    match = re.search(
        rf"Predict `{re.escape(target)}`[^\n]*?Labels: ([^\n]*?)\.\s*$", description, re.M
    )
    return [label.strip() for label in match.group(1).split(",")] if match else None


def _kind_of(declared: str, column: pd.Series) -> str:
    declared = declared.lower()
    if declared.startswith("category"):
        return "categorical"
    if declared.startswith("true/false") or declared.startswith("bool"):
        return "boolean"
    if declared in ("number", "integer"):
        return "numeric"
    values = column.dropna().astype(str).str.strip().str.lower()
    if len(values) and values.isin(TRUE | FALSE).all() and values.nunique() <= 2:
        return "boolean"
    numeric = pd.to_numeric(column, errors="coerce")
    return "numeric" if numeric.notna().sum() >= 0.95 * column.notna().sum() else "categorical"


def _typed(frame: pd.DataFrame, features: dict[str, str]) -> pd.DataFrame:
    out = pd.DataFrame(index=frame.index)
    for name, kind in features.items():
        column = frame[name]
        if kind == "numeric":
            out[name] = pd.to_numeric(column, errors="coerce").astype(float)
        elif kind == "boolean":
            lowered = column.astype(str).str.strip().str.lower()
            out[name] = np.where(
                lowered.isin(TRUE), 1.0, np.where(lowered.isin(FALSE), 0.0, np.nan)
            )
        else:
            out[name] = column.astype(object).where(column.notna(), np.nan)
    return out


def load(folder: Path = Path()) -> Public:
    description = (folder / "description.md").read_text(encoding="utf-8")
    options = {"dtype": str, "keep_default_na": False, "na_values": [""]}
    train = pd.read_csv(folder / "train.csv", **options)
    test = pd.read_csv(folder / "test.csv", **options)
    sample = pd.read_csv(folder / "sample_submission.csv", **options)
    id_column = sample.columns[0]
    targets = [c for c in train.columns if c not in test.columns]
    metric = metric_of(description)
    kind = KINDS.get(metric, "value")
    table = _column_table(description)
    features = {
        name: _kind_of(table.get(name, ("", "", ""))[0], train[name])
        for name in test.columns
        if name != id_column
    }
    classes = {}
    if kind != "value":
        for target in targets:
            seen = sorted(train[target].dropna().unique())
            declared = _labels(description, target)
            if kind == "class_probabilities":
                declared = list(sample.columns[1:])
            classes[target] = declared or seen
    typed_train = _typed(train, features)
    for target in targets:
        typed_train[target] = (
            train[target] if kind != "value" else pd.to_numeric(train[target], errors="coerce")
        )
    return Public(
        description=description,
        metric=metric,
        id_column=id_column,
        targets=targets,
        submission_columns=list(sample.columns),
        kind=kind,
        classes=classes,
        features=features,
        meanings={name: table.get(name, ("", "", ""))[2] for name in features},
        units={name: table.get(name, ("", "", ""))[1] for name in features},
        train=typed_train,
        test=_typed(test, features),
        ids=test[id_column].tolist(),
    )


def valid_values(pub: Public, predicted: np.ndarray) -> np.ndarray:
    """RMSLE takes no negative prediction: the description's metric says so."""
    return np.maximum(predicted, 0.0) if pub.metric.endswith("rmsle") else predicted


def of_kind(pub: Public, *kinds: str) -> list[str]:
    return [name for name, kind in pub.features.items() if kind in kinds]


def write(pub: Public, columns: dict[str, Any], path: Path = Path("submission.csv")) -> None:
    """submission.csv: ids in test order, then each submission column (sequence or constant)."""
    cells: list[Sequence[str]] = [pub.ids]
    for name in pub.submission_columns[1:]:
        values = columns[name]
        if isinstance(values, str | int | float):
            values = [values] * len(pub.ids)
        cells.append([v if isinstance(v, str) else repr(float(v)) for v in values])
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(pub.submission_columns)
        writer.writerows(zip(*cells, strict=True))


def columns_from(pub: Public, target: str, proba: np.ndarray, labels: Sequence[str]) -> dict:
    """Submission columns of one classification target from class probabilities (columns in
    `labels` order): the label, P(positive) or one column per class."""
    labels = [str(label) for label in labels]
    wanted = pub.classes[target]
    full = np.zeros((len(proba), len(wanted)))
    for j, label in enumerate(wanted):
        if label in labels:
            full[:, j] = proba[:, labels.index(label)]
    if pub.kind == "label":
        return {target: [wanted[j] for j in full.argmax(axis=1)]}
    if pub.kind == "probability":
        return {target: np.clip(full[:, -1], 0.0, 1.0)}
    full = np.clip(full, 1e-6, None)
    return dict(zip(wanted, (full / full.sum(axis=1, keepdims=True)).T, strict=True))


def fit_predict(pub: Public, x_train: Any, x_test: Any, make_classifier, make_regressor) -> None:
    """One model per target, predict, write submission.csv (the plain policies' loop)."""
    columns: dict[str, Any] = {}
    for target in pub.targets:
        y = pub.train[target]
        if pub.kind == "value":
            predicted = make_regressor().fit(x_train, y.astype(float)).predict(x_test)
            columns[target] = valid_values(pub, predicted)
            continue
        if y.nunique() < 2:
            proba = np.ones((len(pub.ids), 1))
            columns.update(columns_from(pub, target, proba, [y.iloc[0]]))
            continue
        model = make_classifier().fit(x_train, y)
        columns.update(columns_from(pub, target, model.predict_proba(x_test), model.classes_))
    write(pub, columns)
