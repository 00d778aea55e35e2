"""MLE-bench's grading rules, written out from mlebench/grade_helpers.py (Grader.__call__ and
rank_score) so tests can check our exports against them without an MLE-bench install."""

from __future__ import annotations

import pandas as pd

DIGITS = 5  # Grader.__call__: round(score, 5)


def mlebench_score(raw: float) -> float:
    return round(raw, DIGITS)


def mlebench_thresholds(leaderboard: pd.DataFrame) -> dict[str, float | bool]:
    """MLE-bench's rank rules as CONTRACTS.md states them."""
    scores = leaderboard["score"]
    n = len(scores)

    def at(position: int) -> float:
        return float(scores.iloc[position - 1])

    if n < 100:
        gold, silver, bronze = (at(max(1, int(n * f))) for f in (0.1, 0.2, 0.4))
    elif n < 250:
        gold, silver, bronze = at(10), at(max(1, int(n * 0.2))), at(max(1, int(n * 0.4)))
    elif n < 1000:
        gold, silver, bronze = at(10 + int(n * 0.002)), at(50), at(100)
    else:
        gold = at(10 + int(n * 0.002))
        silver, bronze = at(max(1, int(n * 0.05))), at(max(1, int(n * 0.1)))
    return {
        "gold": gold,
        "silver": silver,
        "bronze": bronze,
        "median": float(scores.median()),
        "is_lower_better": bool(scores.iloc[0] < scores.iloc[-1]),
    }


def rank_score(score: float, leaderboard: pd.DataFrame) -> dict[str, bool]:
    """Grader.rank_score's medals: inclusive, exclusive of each other; above_median strict."""
    t = mlebench_thresholds(leaderboard)
    lower = t["is_lower_better"]

    def reaches(threshold: float) -> bool:
        return score <= threshold if lower else score >= threshold

    gold = reaches(t["gold"])
    silver = not gold and reaches(t["silver"])
    bronze = not gold and not silver and reaches(t["bronze"])
    above = score < t["median"] if lower else score > t["median"]
    medals = {"gold_medal": gold, "silver_medal": silver, "bronze_medal": bronze}
    return {**medals, "above_median": above}
