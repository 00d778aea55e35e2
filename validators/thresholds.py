"""Medal thresholds from the executed baseline ladder, and the acceptance rule.

Anchors: trivial (the training prior), pool (the strong solver pool: model family and
metric-aware post-processing chosen by CV on the training rows only) and the oracle (the
hidden rule, noise free). In the metric's better-direction, with span = pool - trivial:

    median = trivial + 1/4 span   (beat it: you learned something)
    bronze = trivial + 1/2 span   (half the way a careful honest agent gets)
    silver = trivial + 3/4 span
    gold   = pool                 (honest craft reaches it: the pool did, from public files)

No tier is set from a selection on the test set: the pool picked its model on training rows,
so its test score is what an agent as careful as the pool reaches, about half the time above
it. The simple and strong baselines are reported, not used. Equal steps make the smallest
step as large as the span allows.

A step is only a tier if it exceeds test noise: every step (median->bronze, bronze->silver,
silver->gold) must be at least MIN_STEP_SE bootstrap standard errors of the pool's test
score (validators.noise), and the oracle must clear gold by that much and by `min_gap`,
else the task is rejected naming the step.

Scores are the reported ones (5 decimals, sandforge.tiers.DIGITS) and thresholds are stored at
that precision, each rounded toward the easier side (down when higher is better): gold is the
pool's score itself, and whoever reached an unrounded threshold reaches the stored one, in
every consumer. A task is also rejected unless the stored thresholds are strictly ordered, the
sample submission scores strictly worse than the stored median (so it earns no tier in any
consumer), and the oracle reaches the stored gold.
"""

from __future__ import annotations

import decimal
import itertools
import math
from dataclasses import dataclass

from sandforge.validators.metrics import metric_info

from sandforge.pipeline import Rejected
from sandforge.tiers import TIERS, Thresholds, at_least, better, toward_easier

MIN_STEP_SE = 1.5  # a tier step is at least this many bootstrap standard errors
FRACTIONS = {"median": 0.25, "bronze": 0.5, "silver": 0.75, "gold": 1.0}  # of trivial->pool


def min_gap(metric: str, trivial: float) -> float:
    """Smallest difference that counts as a real step, in metric units."""
    info = metric_info(metric)
    return 0.01 if info.bounded else max(0.02 * abs(trivial), 1e-6)


@dataclass(frozen=True)
class Steps:
    """The stored ladder's steps against the test noise, for the manifest."""

    bootstrap_se: float
    steps: dict[str, float]  # "bronze" = bronze - median, ..., "oracle" = oracle - gold

    def as_dict(self) -> dict[str, object]:
        se = self.bootstrap_se
        return {
            "bootstrap_se": se,
            "min_step_se": MIN_STEP_SE,
            "steps": self.steps,
            "steps_in_se": {k: round(v / se, 3) if se > 0 else None for k, v in self.steps.items()},
        }


def steps_of(thresholds: Thresholds, oracle: float, se: float) -> Steps:
    """Each tier's distance from the one below it (and the oracle's from gold), positive."""
    sign = -1.0 if thresholds.is_lower_better else 1.0
    values = thresholds.as_dict()
    pairs = [*itertools.pairwise(TIERS), ("gold", "oracle")]
    values["oracle"] = oracle
    steps = {b: round(sign * (values[b] - values[a]), 8) for a, b in pairs}
    return Steps(bootstrap_se=se, steps=steps)


def set_thresholds(metric: str, scores: dict[str, float], se: float) -> Thresholds:
    """Thresholds from `scores` (trivial, pool, oracle, sample; others are ignored) and `se`,
    the bootstrap standard error of the pool's score, or `Rejected`."""
    lower = metric_info(metric).lower_is_better
    broken = sorted(name for name, value in scores.items() if not math.isfinite(value))
    if broken or not math.isfinite(se) or se < 0:
        raise Rejected(f"non-finite scores for {broken or ['bootstrap_se']}: {scores}, se {se}")
    sign = -1.0 if lower else 1.0
    up = {name: sign * value for name, value in scores.items()}  # higher is better now
    trivial, pool, oracle = up["trivial"], up["pool"], up["oracle"]
    gap = min_gap(metric, scores["trivial"])
    noise = MIN_STEP_SE * se
    if pool - trivial < gap:
        raise Rejected(
            f"no learnable signal: the pool ({scores['pool']:.4g}) is within {gap:.3g} of the "
            f"trivial prior ({scores['trivial']:.4g})"
        )
    if oracle - pool < max(gap, noise):
        raise Rejected(
            f"no headroom: the oracle ({scores['oracle']:.4g}) is within {max(gap, noise):.3g} "
            f"(min gap {gap:.3g}, {MIN_STEP_SE} SE {noise:.3g}) of the pool "
            f"({scores['pool']:.4g}); gold would not be a real step below the oracle"
        )
    # Decimal arithmetic on the reported scores: gold is the pool's score exactly, and a
    # threshold on the grid (0.65) is not floored to its float neighbour's (0.64999).
    low, high = decimal.Decimal(repr(scores["trivial"])), decimal.Decimal(repr(scores["pool"]))
    ladder = {t: low + decimal.Decimal(share) * (high - low) for t, share in FRACTIONS.items()}
    stored = {tier: toward_easier(float(value), lower) for tier, value in ladder.items()}
    if not all(better(b, a, lower) for a, b in itertools.pairwise(stored[t] for t in TIERS)):
        raise Rejected(f"thresholds not strictly ordered after rounding: {stored}")
    if not better(stored["median"], scores["sample"], lower):
        raise Rejected(
            f"sample submission ({scores['sample']:.6g}) does not score strictly worse than the "
            f"median threshold ({stored['median']:.6g})"
        )
    if not at_least(scores["oracle"], stored["gold"], lower):
        raise Rejected("the oracle does not reach gold")
    thresholds = Thresholds(**stored, is_lower_better=lower)
    steps = steps_of(thresholds, scores["oracle"], se).steps
    for below, tier in itertools.pairwise(TIERS):
        if steps[tier] < noise:
            raise Rejected(
                f"tier steps finer than test noise: {below}->{tier} step {steps[tier]:.4g} < "
                f"{MIN_STEP_SE} bootstrap SE ({noise:.4g})"
            )
    return thresholds
