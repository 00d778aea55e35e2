"""The synthesized leaderboard, and our four thresholds in each consumer's terms (CONTRACTS.md):
the board MLE-bench and MLE-Dojo rank against, MLE-bench's medals, SandMLE's milestone reward,
MLE-Dojo's HumanRank.

MLE-bench derives medals from a leaderboard of N teams. With N = 10 (< 100) its rules read
gold = score at rank int(0.1 N) = 1, silver = rank int(0.2 N) = 2, bronze = rank int(0.4 N) = 4
and median = the median of all ten scores, i.e. the mean of the 5th and 6th. The synthesized
board therefore puts gold at 1, silver at 2, the best baseline (= bronze) at 3 and 4, the
median twice at 5 and 6 (the mean of two equal floats is exact), and what is worse than the
median (trivial baseline, sample submission) below. Best first, so MLE-bench infers the
direction from first vs last row.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

from sandforge.storage.bundle import BundleError

from sandforge.tiers import SANDMLE_REWARD, TIERS, VALID_REWARD, at_least, better, tier_of

BEST_FIRST = tuple(reversed(TIERS))
TEAMS = 10


def thresholds_of(manifest: dict[str, Any]) -> tuple[dict[str, float], bool]:
    """(thresholds, is_lower_better), checked: all four finite and strictly ordered."""
    thresholds = manifest.get("thresholds") or {}
    lower = manifest.get("is_lower_better")
    where = f"{manifest.get('task_id')}@{manifest.get('version')}"
    if set(TIERS) - set(thresholds) or not isinstance(lower, bool):
        raise BundleError(f"{where}: manifest lacks the four thresholds or is_lower_better")
    values = {tier: float(thresholds[tier]) for tier in BEST_FIRST}
    ladder = list(values.values())
    ordered = all(better(a, b, lower) for a, b in itertools.pairwise(ladder))
    if not all(map(math.isfinite, ladder)) or not ordered:
        raise BundleError(f"{where}: thresholds are not finite and strictly ordered: {values}")
    return values, lower


def leaderboard(manifest: dict[str, Any]) -> list[tuple[str, float]]:
    """(team, score) rows, best first, from which MLE-bench's rank rules give back exactly
    the manifest's thresholds (see the module docstring)."""
    thresholds, lower = thresholds_of(manifest)
    median = thresholds["median"]
    rows = [
        ("gold tier", thresholds["gold"]),
        ("silver tier", thresholds["silver"]),
        ("best baseline", thresholds["bronze"]),
        ("bronze tier", thresholds["bronze"]),
        ("median tier", median),
        ("median tier", median),
    ]
    scores = manifest.get("baseline_scores") or {}
    below = [
        (team, float(scores[name]))
        for name, team in (("trivial", "trivial baseline"), ("sample", "sample submission"))
        if isinstance(scores.get(name), int | float) and not better(scores[name], median, lower)
    ]
    below.sort(key=lambda row: row[1], reverse=not lower)
    floor = below[-1][1] if below else median
    below += [("below median", floor)] * (TEAMS - len(rows) - len(below))
    return rows + below[: TEAMS - len(rows)]


def mlebench_medals(
    score: float | None, thresholds: dict[str, float], lower: bool
) -> dict[str, bool]:
    """MLE-bench's rank_score: medals inclusive and exclusive of each other, median strict."""
    if score is None:
        return dict.fromkeys(("gold_medal", "silver_medal", "bronze_medal", "above_median"), False)
    gold = at_least(score, thresholds["gold"], lower)
    silver = not gold and at_least(score, thresholds["silver"], lower)
    bronze = not gold and not silver and at_least(score, thresholds["bronze"], lower)
    return {
        "gold_medal": gold,
        "silver_medal": silver,
        "bronze_medal": bronze,
        "above_median": better(score, thresholds["median"], lower),
    }


def sandmle_reward(score: float | None, thresholds: dict[str, float], lower: bool) -> float:
    """The trainer's dense milestone reward without its think-block term: VALID_REWARD for a
    parsed score, raised to the value of the best milestone reached (comparisons inclusive)."""
    if score is None:
        return 0.0
    tier = tier_of(score, thresholds, lower)
    return VALID_REWARD if tier is None else SANDMLE_REWARD[tier]


def position_score(score: float | None, board: list[float], lower: bool) -> float:
    """MLE-Dojo's HumanRank on one leaderboard (best first): p = first 1-based position the
    score matches or beats (N + 1 if none), (N - p + 1) / N. Our public and private boards
    are the same, so this is also their average."""
    if score is None:
        return 0.0
    n = len(board)
    position = next((i for i, s in enumerate(board, 1) if at_least(score, s, lower)), n + 1)
    return (n - position + 1) / n
