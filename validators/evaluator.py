"""Builds each bundle's `evaluator.py` from the standalone template, reads its config back, and
scores in-process with the same code.

The bundle evaluator is evaluator_template.py's exact source with its `CONFIG = None` line
replaced by a literal, so the factory (via `score_submission`) and the trainer (via the
subprocess) run the same scoring code on the same config. Its `ANSWERS` line says where the
answers are; only the SandMLE export that keeps them beside the evaluator rewrites it.
"""

from __future__ import annotations

import ast
import csv
import io
import json
import math
import pprint
from pathlib import Path

from sandforge.agents.recipe import Recipe
from sandforge.validators import evaluator_template as template
from sandforge.validators.metrics import SubmissionKind, metric_info

CONFIG_LINE = "CONFIG = None"
ANSWERS_LINE = f"ANSWERS = {json.dumps(template.ANSWERS)}"
# Stand-in thresholds for a config built before baselines have set the real ones: every
# medal compares against 0.0, so such a bundle must be re-rendered before it ships.
PLACEHOLDER_THRESHOLDS = dict.fromkeys(template.THRESHOLD_KEYS, 0.0)
InvalidSubmission = template.InvalidSubmission


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


def _replace_line(source: str, line: str, new: str) -> str:
    lines = source.splitlines(keepends=True)
    slots = [i for i, text in enumerate(lines) if text.rstrip("\r\n") == line]
    if len(slots) != 1:
        raise ValueError(f"the evaluator must hold exactly one {line!r} line")
    lines[slots[0]] = f"{new}\n"
    return "".join(lines)


def render_evaluator(config: dict) -> str:
    """The template's source with the config baked in: the bundle's `evaluator.py`."""
    source = Path(template.__file__).read_text(encoding="utf-8")
    return _replace_line(source, CONFIG_LINE, f"CONFIG = {config_literal(config)}")


def with_answers_at(source: str, relative: str) -> str:
    """A rendered evaluator that reads the answers at `relative` (to its own folder)."""
    return _replace_line(source, ANSWERS_LINE, f"ANSWERS = {json.dumps(relative)}")


def config_of(source: str, where: str = "evaluator.py") -> dict:
    """The `CONFIG = {...}` literal of a rendered evaluator, read without running it."""
    for node in ast.parse(source, where).body:
        names = [getattr(target, "id", None) for target in getattr(node, "targets", [])]
        if isinstance(node, ast.Assign) and names == ["CONFIG"]:
            config = ast.literal_eval(node.value)
            if isinstance(config, dict):
                return config
    raise ValueError(f"{where}: no CONFIG literal")


def score_submission(
    config: dict,
    submission_path: str | Path,
    answer_path: str | Path,
    private: str | Path | None = None,
) -> float:
    """The reported score (5 decimals, as every consumer compares it) with the bundle's exact
    code; raises InvalidSubmission, also for the answers or a file of `private` as the
    submission."""
    private = None if private is None else str(private)
    raw = template.score_files(config, str(submission_path), str(answer_path), private)
    return template.reported(raw)


def gold_submission(config: dict, answers: bytes) -> bytes:
    """A perfect submission in the submission's format (MLE-bench's `gold_submission`): the
    answers themselves for label and value metrics, certain probabilities otherwise."""
    rows = list(csv.DictReader(io.StringIO(answers.decode("utf-8-sig"), newline="")))
    kind = metric_info(config["metric"]).submission
    targets = config["target_columns"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(config["submission_columns"])
    for row in rows:
        cells = [row[config["id_column"]]]
        if kind == SubmissionKind.CLASS_PROBABILITIES:
            (target,) = targets
            cells += ["1" if row[target] == label else "0" for label in config["classes"][target]]
        elif kind == SubmissionKind.PROBABILITY:
            for target in targets:
                positive = (config.get("classes", {}).get(target) or ["0", "1"])[1]
                cells.append("1" if row[target] == positive else "0")
        else:
            cells += [row[target] for target in targets]
        writer.writerow(cells)
    return out.getvalue().encode()


def _thresholds(thresholds: dict[str, float] | None) -> dict[str, float]:
    if thresholds is None:
        return dict(PLACEHOLDER_THRESHOLDS)
    if set(thresholds) != set(template.THRESHOLD_KEYS):
        raise ValueError(
            f"thresholds need exactly {template.THRESHOLD_KEYS}, got {sorted(thresholds)}"
        )
    values = {key: float(thresholds[key]) for key in template.THRESHOLD_KEYS}
    if not all(math.isfinite(v) for v in values.values()):
        raise ValueError(f"thresholds must be finite: {values}")
    return values


def evaluator_config(recipe: Recipe, thresholds: dict[str, float] | None) -> dict:
    """The evaluator config for a recipe; thresholds=None gives 0.0 placeholders (see above)."""
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
