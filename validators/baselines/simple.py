"""Simple baseline: a linear model on imputed, one-hot encoded, standardized features.

Run as `python simple.py` in a folder holding train.csv, test.csv and task.json.
LogisticRegression per classification target, Ridge per regression target.
"""

import sys
from pathlib import Path

# Run by path, not as a package module: make _common importable even under -P/PYTHONSAFEPATH.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import fit_predict, linear_preprocessor, load_task
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline, make_pipeline


def main() -> None:
    task = load_task()

    def model(estimator: object) -> Pipeline:
        return make_pipeline(linear_preprocessor(task), estimator)

    fit_predict(
        task,
        make_classifier=lambda: model(LogisticRegression(C=1.0, max_iter=2000)),
        make_regressor=lambda: model(Ridge(alpha=1.0)),
    )


if __name__ == "__main__":
    main()
