"""Medal thresholds from the executed baseline ladder, and the acceptance rule.

Ladder: trivial (prior) < best of simple/strong baselines < oracle (the hidden rule, noise
free). Thresholds, in the metric's better-direction:

    median = halfway from trivial to the best baseline  (beat it: you learned something)
    bronze = the best baseline                           (match a solid default model)
    silver = best + 1/3 of the way to the oracle
    gold   = best + 2/3 of the way to the oracle         (the oracle reaches it)

Scores are the reported ones (5 decimals, sandforge.tiers.DIGITS) and thresholds are stored at
that precision, each rounded toward the easier side (down when higher is better): bronze is
the best baseline's score itself, and whoever reached an unrounded threshold reaches the
stored one, in every consumer. A task is accepted only when every step of the ladder is
separated by a real margin, the stored thresholds are strictly ordered, the sample submission
scores strictly worse than the stored median (so it earns no tier in any consumer), and the
oracle reaches the stored gold.
"""

from __future__ import annotations

import itertools
import math

from sandforge.validators.metrics import metric_info

from sandforge.pipeline import Rejected
from sandforge.tiers import TIERS, Thresholds, at_least, better, toward_easier


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
    up = {name: sign * value for name, value in scores.items()}  # higher is better now
    best_name = max(("simple", "strong"), key=lambda n: up[n])
    trivial, best, oracle = up["trivial"], up[best_name], up["oracle"]
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
    ladder = {
        "median": (trivial + best) / 2,
        "bronze": best,
        "silver": best + (oracle - best) / 3,
        "gold": best + 2 * (oracle - best) / 3,
    }
    stored = {tier: toward_easier(sign * value, lower) for tier, value in ladder.items()}
    if not all(better(b, a, lower) for a, b in itertools.pairwise(stored[t] for t in TIERS)):
        raise Rejected(f"thresholds not strictly ordered after rounding: {stored}")
    if not better(stored["median"], scores["sample"], lower):
        raise Rejected(
            f"sample submission ({scores['sample']:.6g}) does not score strictly worse than the "
            f"median threshold ({stored['median']:.6g})"
        )
    if not at_least(scores["oracle"], stored["gold"], lower):
        raise Rejected("the oracle does not reach gold")
    return Thresholds(**stored, is_lower_better=lower)
