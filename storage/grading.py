"""Grade one submission against one bundle folder the way each consumer would.

The report has MLE-bench's fields (its score rounded to 5 places, as its Grader does, and the
medals from that rounded score), plus `sandmle_reward` (the trainer's milestone reward on the
unrounded score) and `mledojo_position_score` (HumanRank on the synthesized leaderboard).
Scoring runs in-process with the installed grader (validators/grader.py) on the config the
bundle's evaluator.py carries; nothing from the bundle is executed.
"""

from __future__ import annotations

import ast
import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandforge.storage.bundle import BundleError, verify_bundle
from sandforge.storage.leaderboard import (
    leaderboard,
    mlebench_medals,
    position_score,
    sandmle_reward,
    thresholds_of,
)
from sandforge.validators.evaluator import score_submission
from sandforge.validators.grader import InvalidSubmission

from sandforge.bundle_files import PRIVATE, PUBLIC

MLEBENCH_DIGITS = 5  # mlebench.grade_helpers.Grader rounds every score to 5 places


@dataclass(frozen=True)
class Graded:
    report: dict[str, Any]
    problem: str | None  # why the submission is missing or invalid


def grade(bundle: Path, submission: Path) -> Graded:
    """Verify the bundle, score the submission, report as MLE-bench plus our two fields."""
    manifest = verify_bundle(bundle)
    thresholds, lower = thresholds_of(manifest)
    exists = submission.is_file() and submission.suffix.lower() == ".csv"
    score: float | None = None
    problem = None if exists else f"{submission}: no such CSV file"
    if exists:
        try:
            score = score_submission(
                bundle_config(bundle), submission, bundle / PRIVATE / "answer.csv"
            )
        except InvalidSubmission as exc:
            problem = f"invalid submission: {exc}"
        except (ValueError, KeyError, TypeError) as exc:
            raise BundleError(f"{bundle}: the evaluator cannot score: {exc}") from None
    rounded = None if score is None else round(score, MLEBENCH_DIGITS)
    medals = mlebench_medals(rounded, thresholds, lower)
    board = [value for _, value in leaderboard(manifest)]
    report = {
        "competition_id": manifest["task_id"],
        "score": rounded,
        **{f"{tier}_threshold": thresholds[tier] for tier in ("gold", "silver", "bronze")},
        "median_threshold": thresholds["median"],
        "any_medal": medals["gold_medal"] or medals["silver_medal"] or medals["bronze_medal"],
        **medals,
        "submission_exists": exists,
        "valid_submission": score is not None,
        "is_lower_better": lower,
        "created_at": dt.datetime.now().isoformat(),
        "submission_path": str(submission),
        "sandmle_reward": sandmle_reward(score, thresholds, lower),
        "mledojo_position_score": position_score(score, board, lower),
    }
    return Graded(report, problem)


def bundle_config(bundle: Path) -> dict[str, Any]:
    """The `CONFIG = {...}` literal of the bundle's evaluator.py, read without running it."""
    path = bundle / PUBLIC / "evaluator.py"
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    for node in tree.body:
        names = [getattr(target, "id", None) for target in getattr(node, "targets", [])]
        if isinstance(node, ast.Assign) and names == ["CONFIG"]:
            config = ast.literal_eval(node.value)
            if isinstance(config, dict):
                return config
    raise BundleError(f"{path}: no CONFIG literal")
