"""`sandforge grade`: one submission against one bundle folder, graded as each consumer would.

The report has MLE-bench's fields (medals from its rank rules), plus `sandmle_reward` (the
trainer's milestone reward) and `mledojo_position_score` (HumanRank on the synthesized
leaderboard). Every consumer sees the score as the shipped graders report it: at 5 decimals
(sandforge.tiers.DIGITS), the precision MLE-bench compares at, so all of them compare the same
two numbers. Scoring runs in-process with the installed evaluator template on the config the
bundle's evaluator.py carries, with the same file checks (the bundle's answers or any file of
its private folder are refused as a submission); nothing from the bundle is executed.
"""

from __future__ import annotations

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
from sandforge.validators.evaluator import InvalidSubmission, config_of, score_submission

from sandforge.bundle_files import PRIVATE, PUBLIC
from sandforge.tiers import MEDALS


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
        private = bundle / PRIVATE
        try:
            score = score_submission(
                bundle_config(bundle), submission, private / "answer.csv", private
            )
        except InvalidSubmission as exc:
            problem = f"invalid submission: {exc}"
        except (ValueError, KeyError, TypeError) as exc:
            raise BundleError(f"{bundle}: the evaluator cannot score: {exc}") from None
    medals = mlebench_medals(score, thresholds, lower)
    board = [value for _, value in leaderboard(manifest)]
    report = {
        "competition_id": manifest["task_id"],
        "score": score,
        **{f"{tier}_threshold": thresholds[tier] for tier in MEDALS},
        "median_threshold": thresholds["median"],
        "any_medal": any(medals[f"{tier}_medal"] for tier in MEDALS),
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
    """The config of the bundle's evaluator.py, read without running it."""
    path = bundle / PUBLIC / "evaluator.py"
    try:
        return config_of(path.read_text(encoding="utf-8"), str(path))
    except (SyntaxError, ValueError) as exc:
        raise BundleError(f"{path}: {exc}") from None
