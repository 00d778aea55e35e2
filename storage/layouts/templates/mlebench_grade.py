"""MLE-bench grader of a sandforge task (shipped as the competition's `grade.py`).

Scores with the task's own `evaluator.py` beside this file: the exact code (metric, checks and
config) the SandMLE trainer runs. MLE-bench reads the submission itself and hands both tables
over as pandas DataFrames; their header and row count are checked first (a table longer than
the test set is refused before it is copied), then they are turned back into CSV cells, which
is what the evaluator parses. The score is returned at the 5 decimals MLE-bench rounds to.
Standard library only, plus the DataFrames' own `to_csv`.
"""

from __future__ import annotations

import csv
import importlib.util
import io
from pathlib import Path
from typing import Any

try:
    from mlebench.grade_helpers import InvalidSubmissionError
except ImportError:  # used outside an MLE-bench checkout

    class InvalidSubmissionError(Exception):
        """The submission cannot be graded; MLE-bench then scores it None."""


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


def grade(submission: Any, answers: Any) -> float:
    config = EVALUATOR.CONFIG
    try:
        EVALUATOR.check_shape(
            config, [str(c) for c in submission.columns], len(submission), len(answers)
        )
        header, rows = _cells(submission)
        answer_header, answer_rows = _cells(answers)
        score = EVALUATOR.score_rows(config, header, rows, answer_header, answer_rows)
    except EVALUATOR.InvalidSubmission as exc:
        raise InvalidSubmissionError(str(exc)) from None
    return EVALUATOR.reported(score)
