"""Policy 5, default gradient boosting: scikit-learn's HistGradientBoosting with its default
hyperparameters and native categorical splits (lightgbm is not in the lock)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _prep import ordinal
from _public import fit_predict, load, of_kind
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.pipeline import make_pipeline


def main() -> None:
    pub = load()
    categorical = of_kind(pub, "categorical")
    prep = ordinal(of_kind(pub, "numeric", "boolean"), categorical)
    native = [True] * len(categorical) + [False] * (len(pub.features) - len(categorical))
    fit_predict(
        pub,
        pub.train[list(pub.features)],
        pub.test[list(pub.features)],
        make_classifier=lambda: make_pipeline(
            prep, HistGradientBoostingClassifier(categorical_features=native, random_state=0)
        ),
        make_regressor=lambda: make_pipeline(
            prep, HistGradientBoostingRegressor(categorical_features=native, random_state=0)
        ),
    )


if __name__ == "__main__":
    main()
