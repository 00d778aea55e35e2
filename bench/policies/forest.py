"""Policy 4, random forest with preprocessing: categories as codes, numbers imputed."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _prep import imputed_ordinal
from _public import fit_predict, load, of_kind
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.pipeline import make_pipeline

PARAMS = {"n_estimators": 300, "n_jobs": 1, "random_state": 0}


def main() -> None:
    pub = load()
    prep = imputed_ordinal(of_kind(pub, "numeric", "boolean"), of_kind(pub, "categorical"))
    fit_predict(
        pub,
        pub.train[list(pub.features)],
        pub.test[list(pub.features)],
        make_classifier=lambda: make_pipeline(prep, RandomForestClassifier(**PARAMS)),
        make_regressor=lambda: make_pipeline(prep, RandomForestRegressor(**PARAMS)),
    )


if __name__ == "__main__":
    main()
