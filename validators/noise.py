"""Test-set noise: the bootstrap standard error of a submission's score.

Two submissions a tier apart must differ by more than the score wobbles when the test rows are
redrawn, or the tier a policy earns is a property of the draw, not of its craft. The score of
each resample comes from the bundle evaluator's own metric functions (evaluator_template), on
the submission and answers parsed by its own code, so the noise is measured on the number the
trainer sees.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from sandforge.validators import evaluator_template as template

RESAMPLES = 200
PURPOSE = 0x5E  # child RNG of the recipe seed for the bootstrap, apart from synthesis's
# Metrics that are the mean of a per-row value: a resample's score is the mean of the rows'
# own scores (the metric on one row each), 50x faster than rescoring every resample.
ROW_MEANS = frozenset({"accuracy", "log_loss", "multiclass_log_loss", "mae"})


def encoded(config: dict, submission: Path, answers: Path) -> tuple[list, list]:
    """(truths, predictions) of a valid submission as the metric functions take them."""
    header, rows = template._read_answers(str(answers))
    table = template._answer_table(config, header, rows)
    with submission.open(newline="", encoding="utf-8") as f:
        cells = list(csv.reader(f))
    numbered = [(i, row) for i, row in enumerate(cells[1:], start=2) if row]
    submitted = template._index_rows(cells[0], numbered, config["id_column"], ValueError)
    return template._encode(config, table, submitted, list(table))


def bootstrap_se(
    config: dict, submission: Path, answers: Path, seed: int, resamples: int = RESAMPLES
) -> float:
    """Standard deviation of the submission's raw score over `resamples` redraws of the test
    rows with replacement (deterministic in `seed`)."""
    metric = template.METRICS[config["metric"]]
    truths, predictions = encoded(config, submission, answers)
    rng = np.random.default_rng([seed, PURPOSE])
    draws = rng.integers(0, len(truths), size=(resamples, len(truths)))
    if config["metric"] in ROW_MEANS:
        rows = np.array([metric([t], [p]) for t, p in zip(truths, predictions, strict=True)])
        return float(np.std(rows[draws].mean(axis=1), ddof=1))
    truths, predictions = (np.asarray(side, dtype=object) for side in (truths, predictions))
    scores = []
    for rows in draws:
        try:
            scores.append(metric(truths[rows].tolist(), predictions[rows].tolist()))
        except ValueError:  # a resample with one class has no ROC AUC: redraws skip it
            continue
    return float(np.std(scores, ddof=1))
