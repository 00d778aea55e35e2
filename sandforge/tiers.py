"""The medal tiers: their names and order, the reference submissions they are set from, a
task's thresholds, the precision every consumer compares scores at, SandMLE's milestone
rewards, and the one comparison rule they all share.

Core, the one place these are named: validators score the references and set the thresholds,
the candidate carries them, storage writes and grades them, reports and the CLI show them.
The standalone evaluator template (validators/evaluator_template.py) cannot import this
module; tests hold its copies (`THRESHOLD_KEYS`, `DIGITS`) to these.
"""

from __future__ import annotations

import decimal
from dataclasses import asdict, dataclass

TIERS = ("median", "bronze", "silver", "gold")  # weakest first
MEDALS = ("gold", "silver", "bronze")  # MLE-bench's medals, best first
# Every task is scored on these: the four baseline scripts (trivial and pool anchor the
# thresholds), the hidden rule's noise-free prediction and the uninformative sample
# submission (catalog column order).
REFERENCE_SUBMISSIONS = ("trivial", "simple", "strong", "pool", "oracle", "sample")
# mlebench.grade_helpers.Grader rounds every score to 5 places before comparing; every grader
# we ship reports the score at this precision and thresholds are stored at it, so all
# consumers compare the same two numbers.
DIGITS = 5
# SandMLE's dense milestone reward (CONTRACTS.md): a valid submission earns VALID_REWARD, each
# tier reached (inclusive, on the reported score) raises it to its value.
VALID_REWARD = 0.2
SANDMLE_REWARD = {"median": 0.3, "bronze": 0.7, "silver": 0.8, "gold": 0.9}


@dataclass(frozen=True)
class Thresholds:
    median: float
    bronze: float
    silver: float
    gold: float
    is_lower_better: bool

    def as_dict(self) -> dict[str, float]:
        return {k: v for k, v in asdict(self).items() if k != "is_lower_better"}


def toward_easier(value: float, lower: bool) -> float:
    """`value` on the DIGITS grid, rounded the way that keeps whoever reached `value` above it:
    down when higher is better, up when lower is. Exact decimal arithmetic, so a value
    already on the grid (a reported score) stays itself."""
    step = decimal.Decimal(1).scaleb(-DIGITS)
    rounding = decimal.ROUND_CEILING if lower else decimal.ROUND_FLOOR
    return float(decimal.Decimal(repr(value)).quantize(step, rounding=rounding))


def at_least(score: float, threshold: float, lower: bool) -> bool:
    """`score` reaches `threshold` (inclusive), in the metric's direction."""
    return score <= threshold if lower else score >= threshold


def better(a: float, b: float, lower: bool) -> bool:
    """`a` is strictly better than `b`, in the metric's direction."""
    return a < b if lower else a > b


def tier_of(score: float | None, thresholds: dict[str, float], lower: bool) -> str | None:
    """The best tier `score` reaches, comparisons inclusive (SandMLE's milestones, MLE-bench's
    medals); None below the median or without a score."""
    if score is None:
        return None
    reached = [tier for tier in TIERS if at_least(score, thresholds[tier], lower)]
    return reached[-1] if reached else None
