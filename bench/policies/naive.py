"""Policy 2, naive: a linear model on the numeric columns only; every categorical and
boolean column is dropped, missing cells get the column mean, nothing is scaled."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _public import fit_predict, load, of_kind
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline


def main() -> None:
    pub = load()
    numeric = of_kind(pub, "numeric")
    fit_predict(
        pub,
        pub.train[numeric],
        pub.test[numeric],
        make_classifier=lambda: make_pipeline(SimpleImputer(), LogisticRegression(max_iter=500)),
        make_regressor=lambda: make_pipeline(SimpleImputer(), LinearRegression()),
    )


if __name__ == "__main__":
    main()
