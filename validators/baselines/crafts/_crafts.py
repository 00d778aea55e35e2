"""The craft checks' base solver: one model, fitted on a given feature set, writes a submission.

Run by path in the sandbox like the baselines; it builds on the ladder's ../_common.py (the
task, the submission) and the strong baseline's trees, so "without the craft" is the ladder's
own solver.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

# The sandbox shows this folder's parent too: the ladder's modules.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _common as ladder
from strong import PARAMS as TREE_PARAMS


def _model(task: ladder.Task, features: dict[str, str], classify: bool, options: dict[str, Any]):
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

    categorical = [n for n, k in features.items() if k == "categorical"]
    others = [n for n in features if n not in categorical]
    weight = options.get("class_weight")
    if options.get("solver") == "linear":
        numbers = make_pipeline(SimpleImputer(strategy="median"), StandardScaler())
        codes = make_pipeline(
            SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")
        )
        prep = ColumnTransformer([("num", numbers, others), ("cat", codes, categorical)])
        model = LogisticRegression(max_iter=2000, class_weight=weight) if classify else Ridge()
        return make_pipeline(prep, model)
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    encoder = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan)
    prep = ColumnTransformer([("cat", encoder, categorical), ("rest", "passthrough", others)])
    mask = [True] * len(categorical) + [False] * len(others)
    if classify:
        trees = HistGradientBoostingClassifier(
            categorical_features=mask, class_weight=weight, **TREE_PARAMS
        )
    else:
        trees = HistGradientBoostingRegressor(categorical_features=mask, **TREE_PARAMS)
    return make_pipeline(prep, trees)


def solve(
    task: ladder.Task, train, test, ids, features: dict[str, str], out: str, **options
) -> None:
    """Fit the base solver on `features` (name -> numeric | categorical), write `out`."""
    x_train, x_test = train[list(features)], test[list(features)]
    columns: dict[str, Any] = {}
    for target in task.targets:
        y = train[target]
        if task.kind == "value":
            predictions = _model(task, features, False, options).fit(x_train, y.astype(float))
            values = predictions.predict(x_test)
            columns[target] = np.maximum(values, 0.0) if target in task.nonnegative else values
            continue
        if y.nunique() < 2:
            raise ValueError(f"target {target} has a single training class")
        model = _model(task, features, True, options).fit(x_train, y)
        if task.kind == "label":
            columns[target] = [str(label) for label in model.predict(x_test)]
            continue
        probabilities = dict(
            zip(map(str, model.classes_), model.predict_proba(x_test).T, strict=True)
        )
        zeros = np.zeros(len(x_test))
        if task.kind == "probability":
            columns[target] = probabilities.get(task.classes.get(target, ["0", "1"])[-1], zeros)
        else:
            columns.update({c: probabilities.get(c, zeros) for c in task.classes[target]})
    ladder.write_submission(task, ids, columns, out)
