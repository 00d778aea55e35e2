"""Small real bundles for storage tests: a rendered evaluator.py, data, answers, a manifest
with thresholds and baseline scores; no pipeline, no sandbox."""

from __future__ import annotations

import random
from typing import Any

from sandforge.storage.bundle import build_manifest
from sandforge.validators.evaluator import render_evaluator

from sandforge.bundle_files import PRIVATE, PUBLIC

Bundle = tuple[dict[str, Any], dict[str, bytes]]
REGRESSION = {"median": 2.0, "bronze": 1.5, "silver": 1.0, "gold": 0.5}
BINARY = {"median": 0.6, "bronze": 0.7, "silver": 0.8, "gold": 0.9}


def make_task(
    task_id: str = "toy-rmse",
    *,
    binary: bool = False,
    salt: int = 0,
    crafts: list[dict[str, Any]] | None = None,
) -> Bundle:
    """A regression (rmse) or binary (accuracy) task of 30 test rows; `salt` changes content;
    `crafts` is the manifest's craft-check record."""
    rng = random.Random(f"{task_id}-{salt}")
    config: dict[str, Any] = {
        "metric": "accuracy" if binary else "rmse",
        "id_column": "id",
        "target_columns": ["y"],
        "submission_columns": ["id", "y"],
        "is_lower_better": not binary,
        "thresholds": BINARY if binary else REGRESSION,
    }
    if binary:
        config["classes"] = {"y": ["0", "1"]}

    def target(x: float) -> str:
        return str(int(x > 5)) if binary else f"{2 * x + rng.gauss(0, 0.3):.3f}"

    train = [(f"R{i:03d}", round(rng.uniform(0, 10), 2)) for i in range(40)]
    test = [(f"T{i:03d}", round(rng.uniform(0, 10), 2)) for i in range(30)]
    constant = "0" if binary else "10.0"
    files = {
        f"{PUBLIC}/description.md": f"# {task_id}\n\nPredict y from x.\n".encode(),
        f"{PUBLIC}/evaluator.py": render_evaluator(config).encode(),
        f"{PUBLIC}/train.csv": _csv(["id", "x", "y"], [(i, x, target(x)) for i, x in train]),
        f"{PUBLIC}/test.csv": _csv(["id", "x"], test),
        f"{PUBLIC}/sample_submission.csv": _csv(["id", "y"], [(i, constant) for i, _ in test]),
        f"{PRIVATE}/answer.csv": _csv(["id", "y"], [(i, target(x)) for i, x in test]),
    }
    scores = (
        {"trivial": 0.5, "simple": 0.7, "strong": 0.68, "oracle": 1.0, "sample": 0.5}
        if binary
        else {"trivial": 2.5, "simple": 1.5, "strong": 1.6, "oracle": 0.1, "sample": 9.0}
    )
    manifest = build_manifest(
        files,
        task_id=task_id,
        seed_id="spaceship-titanic" if binary else "new-york-city-taxi-fare-prediction",
        provider={"name": "offline", "model": "procedural-v1"},
        domain="toys",
        modality="tabular",
        task_type="binary" if binary else "regression",
        metric=config["metric"],
        is_lower_better=not binary,
        thresholds=config["thresholds"],
        baseline_scores=scores,
        recipe={"title": f"Toy {task_id}", "n_train": len(train), "n_test": len(test)},
        **({"crafts": crafts} if crafts is not None else {}),
    )
    return manifest, files


def _csv(header: list[str], rows: list[tuple]) -> bytes:
    lines = [",".join(header), *(",".join(str(cell) for cell in row) for row in rows)]
    return ("\n".join(lines) + "\n").encode()
