"""Policy 3, proper preprocessing + linear: impute, one-hot the categoricals and booleans,
scale, then Ridge or logistic regression."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _prep import one_hot
from _public import fit_predict, load, of_kind
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline


def main() -> None:
    pub = load()
    prep = one_hot(of_kind(pub, "numeric"), of_kind(pub, "categorical", "boolean"))
    frames = [pub.train[list(pub.features)].copy(), pub.test[list(pub.features)].copy()]
    for frame in frames:  # booleans one-hot as two levels (plus missing), like categories
        for name in of_kind(pub, "boolean"):
            frame[name] = frame[name].map({1.0: "true", 0.0: "false"}).astype(object)
    fit_predict(
        pub,
        *frames,
        make_classifier=lambda: make_pipeline(prep, LogisticRegression(max_iter=2000)),
        make_regressor=lambda: make_pipeline(prep, Ridge(alpha=1.0)),
    )


if __name__ == "__main__":
    main()
