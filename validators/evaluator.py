"""Builds each bundle's `evaluator.py` from the standalone grader, and scores in-process.

The bundle evaluator is grader.py's exact source with its `CONFIG = None` line replaced by a
literal, so the factory (via `score_submission`) and the trainer (via the subprocess) run the
same scoring code on the same config.
"""

from __future__ import annotations

import ast
import math
import pprint
from pathlib import Path

from sandforge.agents.recipe import Recipe
from sandforge.validators import grader
from sandforge.validators.metrics import SubmissionKind, metric_info

CONFIG_LINE = "CONFIG = None"
# Stand-in thresholds for a config built before baselines have set the real ones: every
# medal compares against 0.0, so such a bundle must be re-rendered before it ships.
PLACEHOLDER_THRESHOLDS = dict.fromkeys(grader.THRESHOLD_KEYS, 0.0)


def _check_literal(value: object, where: str = "config") -> None:
    """Only JSON-like values round-trip through a Python literal byte for byte."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"{where}: key {key!r} is not a string")
            _check_literal(item, f"{where}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_literal(item, f"{where}[{i}]")
    elif isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{where}: {value} has no Python literal")
    elif value is not None and not isinstance(value, str | bool | int | float):
        raise ValueError(f"{where}: {type(value).__name__} is not JSON-like")


def config_literal(config: dict) -> str:
    """A deterministic Python literal for the config: sorted keys, stable wrapping."""
    _check_literal(config)
    literal = pprint.pformat(config, indent=1, width=96, sort_dicts=True)
    if ast.literal_eval(literal) != config:
        raise ValueError("config does not survive a round trip through its literal")
    return literal


def render_evaluator(config: dict) -> str:
    """grader.py's source with the config baked in: the bundle's `evaluator.py`."""
    lines = Path(grader.__file__).read_text(encoding="utf-8").splitlines(keepends=True)
    slots = [i for i, line in enumerate(lines) if line.rstrip("\r\n") == CONFIG_LINE]
    if len(slots) != 1:
        raise ValueError(f"grader.py must hold exactly one {CONFIG_LINE!r} line")
    lines[slots[0]] = f"CONFIG = {config_literal(config)}\n"
    return "".join(lines)


def score_submission(config: dict, submission_path: str | Path, answer_path: str | Path) -> float:
    """In-process score with the bundle's exact code; raises grader.InvalidSubmission."""
    return grader.score_files(config, str(submission_path), str(answer_path))


def _thresholds(thresholds: dict[str, float] | None) -> dict[str, float]:
    if thresholds is None:
        return dict(PLACEHOLDER_THRESHOLDS)
    if set(thresholds) != set(grader.THRESHOLD_KEYS):
        raise ValueError(
            f"thresholds need exactly {grader.THRESHOLD_KEYS}, got {sorted(thresholds)}"
        )
    values = {key: float(thresholds[key]) for key in grader.THRESHOLD_KEYS}
    if not all(math.isfinite(v) for v in values.values()):
        raise ValueError(f"thresholds must be finite: {values}")
    return values


def evaluator_config(recipe: Recipe, thresholds: dict[str, float] | None) -> dict:
    """The grader config for a recipe; thresholds=None gives 0.0 placeholders (see above)."""
    info = metric_info(recipe.metric)
    config = {
        "metric": recipe.metric,
        "id_column": recipe.id_column,
        "target_columns": [t.name for t in recipe.targets],
        "submission_columns": recipe.submission_columns(),
        "is_lower_better": info.lower_is_better,
        "thresholds": _thresholds(thresholds),
    }
    if info.submission != SubmissionKind.VALUE:
        config["classes"] = {t.name: recipe.class_labels(t) for t in recipe.targets}
    return config
