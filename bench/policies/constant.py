"""Policy 1, constant: the training prior (mode, class frequencies or mean) for every row."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
from _public import columns_from, load, valid_values, write


def main() -> None:
    pub = load()
    columns = {}
    n = len(pub.ids)
    for target in pub.targets:
        y = pub.train[target].dropna()
        if pub.kind == "value":
            columns[target] = valid_values(pub, np.full(n, float(y.mean())))
            continue
        labels = pub.classes[target]
        freq = np.array([(y == label).mean() for label in labels])
        columns.update(columns_from(pub, target, np.tile(freq, (n, 1)), labels))
    write(pub, columns)


if __name__ == "__main__":
    main()
