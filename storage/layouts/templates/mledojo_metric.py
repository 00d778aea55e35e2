"""MLE-Dojo metric class of a sandforge task (shipped as the competition's `utils/metric.py`).

Scores with the task's own `evaluator.py` in this folder: the exact code (metric, checks and
config) the SandMLE trainer runs. MLE-Dojo reads the submission itself and hands both tables
over as pandas DataFrames; their header and row count are checked first (a table longer than
the test set is refused before it is copied), then they are turned back into CSV cells, which
is what the evaluator parses. The score is returned at 5 decimals, as the evaluator reports it.
Standard library only, plus the DataFrames' own `to_csv`.
"""

from __future__ import annotations

import csv
import importlib.util
import io
from pathlib import Path
from typing import Any

try:
    from mledojo.metrics.base import CompetitionMetrics, InvalidSubmissionError
except ImportError:  # used outside an MLE-Dojo checkout

    class CompetitionMetrics:
        def __init__(self, higher_is_better: bool = True):
            self.higher_is_better = higher_is_better

    class InvalidSubmissionError(Exception):
        """The submission cannot be graded."""


def _load_evaluator() -> Any:
    path = Path(__file__).with_name("evaluator.py")
    spec = importlib.util.spec_from_file_location(f"{__name__}_evaluator", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


EVALUATOR = _load_evaluator()


def _cells(frame: Any) -> tuple[list[str], list[list[str]]]:
    lines = csv.reader(io.StringIO(frame.to_csv(index=False)))
    rows = [row for row in lines if any(cell.strip() for cell in row)]  # as the evaluator reads
    return (rows[0], rows[1:]) if rows else ([], [])


class SandforgeMetrics(CompetitionMetrics):
    def __init__(self, higher_is_better: bool = not EVALUATOR.CONFIG["is_lower_better"]):
        super().__init__(higher_is_better)

    def evaluate(self, y_true: Any, y_pred: Any) -> float:
        config = EVALUATOR.CONFIG
        try:
            EVALUATOR.check_shape(
                config, [str(c) for c in y_pred.columns], len(y_pred), len(y_true)
            )
            header, rows = _cells(y_pred)
            answer_header, answer_rows = _cells(y_true)
            score = EVALUATOR.score_rows(config, header, rows, answer_header, answer_rows)
        except EVALUATOR.InvalidSubmission as exc:
            raise InvalidSubmissionError(str(exc)) from None
        return EVALUATOR.reported(score)

    def validate_submission(self, submission: Any, ground_truth: Any) -> str:
        self.evaluate(ground_truth, submission)
        return "Submission is valid."
