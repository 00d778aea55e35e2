"""Medal thresholds from the executed baseline ladder, and the acceptance rule.

Ladder: trivial (prior) < best of simple/strong baselines < oracle (the hidden rule, noise
free). Thresholds, in the metric's better-direction:

    median = halfway from trivial to the best baseline  (beat it: you learned something)
    bronze = the best baseline                           (match a solid default model)
    silver = best + 1/3 of the way to the oracle
    gold   = best + 2/3 of the way to the oracle         (the oracle reaches it)

A task is accepted only when every step of the ladder is separated by a real margin, the
sample submission scores worse than the median, and the oracle reaches gold.
"""

from __future__ import annotations

import itertools
import math

from sandforge.validators.metrics import metric_info

from sandforge.pipeline import Rejected
from sandforge.tiers import TIERS, Thresholds

_DIGITS = 6


def min_gap(metric: str, trivial: float) -> float:
    """Smallest difference that counts as a real step, in metric units."""
    info = metric_info(metric)
    return 0.01 if info.bounded else max(0.02 * abs(trivial), 1e-6)


def set_thresholds(metric: str, scores: dict[str, float]) -> Thresholds:
    """Thresholds from `scores` (trivial, simple, strong, oracle, sample) or `Rejected`."""
    lower = metric_info(metric).lower_is_better
    broken = sorted(name for name, value in scores.items() if not math.isfinite(value))
    if broken:
        raise Rejected(f"non-finite scores for {broken}: {scores}")
    sign = -1.0 if lower else 1.0
    better = {name: sign * value for name, value in scores.items()}  # higher is better now
    best_name = max(("simple", "strong"), key=lambda n: better[n])
    trivial, best, oracle = better["trivial"], better[best_name], better["oracle"]
    gap = min_gap(metric, scores["trivial"])
    if best - trivial < gap:
        raise Rejected(
            f"no learnable signal: best baseline ({best_name} {scores[best_name]:.4g}) is within "
            f"{gap:.3g} of the trivial prior ({scores['trivial']:.4g})"
        )
    if oracle - best < gap:
        raise Rejected(
            f"no headroom: the oracle ({scores['oracle']:.4g}) is within {gap:.3g} of the "
            f"{best_name} baseline ({scores[best_name]:.4g}); gold would be trivial"
        )
    median = (trivial + best) / 2
    if better["sample"] >= median:
        raise Rejected(
            f"sample submission ({scores['sample']:.4g}) scores at or above the median "
            f"threshold ({sign * median:.4g})"
        )
    ladder = {
        "median": median,
        "bronze": best,
        "silver": best + (oracle - best) / 3,
        "gold": best + 2 * (oracle - best) / 3,
    }
    rounded = {k: round(sign * v, _DIGITS) for k, v in ladder.items()}
    ordered = [sign * rounded[k] for k in TIERS]
    if not all(a < b for a, b in itertools.pairwise(ordered)):
        raise Rejected(f"thresholds not strictly ordered after rounding: {rounded}")
    if sign * rounded["gold"] > oracle:
        raise Rejected("the oracle does not reach gold")
    return Thresholds(**rounded, is_lower_better=lower)
