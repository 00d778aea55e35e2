"""Medal thresholds from the baseline ladder and the test noise, and when a task is rejected."""

from __future__ import annotations

import itertools
import random

import pytest
from sandforge.validators.metrics import METRICS
from sandforge.validators.thresholds import MIN_STEP_SE, min_gap, set_thresholds, steps_of

from sandforge.pipeline import Rejected
from sandforge.tiers import Thresholds, at_least

MEDALS = ("median", "bronze", "silver", "gold")
HIGHER = [m.name for m in METRICS.values() if m.implemented and not m.lower_is_better]
LOWER = [m.name for m in METRICS.values() if m.implemented and m.lower_is_better]


def _scores(trivial, pool, oracle, sample, simple=None, strong=None) -> dict[str, float]:
    """A ladder; simple and strong default to the pool's score (they set nothing)."""
    return {
        "trivial": trivial,
        "simple": pool if simple is None else simple,
        "strong": pool if strong is None else strong,
        "pool": pool,
        "oracle": oracle,
        "sample": sample,
    }


def _assert_ladder(t: Thresholds, scores: dict[str, float], se: float) -> None:
    """Medals strictly better in the metric's direction, steps over the noise, the pool
    reaching gold and the oracle clearing it."""
    sign = -1.0 if t.is_lower_better else 1.0
    values = [sign * t.as_dict()[k] for k in MEDALS]
    assert all(b - a >= MIN_STEP_SE * se for a, b in itertools.pairwise(values)), (t, se)
    assert all(a < b for a, b in itertools.pairwise(values)), t
    assert sign * scores["oracle"] - sign * t.gold >= MIN_STEP_SE * se
    assert sign * t.median > sign * scores["sample"]
    assert sign * t.median > sign * scores["trivial"]
    assert sign * t.gold <= sign * scores["pool"]  # the pool reaches gold
    assert all(round(v, 5) == v for v in t.as_dict().values())  # stored at 5 digits


# --- the documented values ---------------------------------------------------------------


def test_higher_is_better_values_as_documented() -> None:
    scores = _scores(trivial=0.5, pool=0.7, oracle=0.9, sample=0.45)
    t = set_thresholds("accuracy", scores, se=0.01)
    assert t.is_lower_better is False
    assert t.median == pytest.approx(0.55)  # a quarter of the way from trivial to the pool
    assert t.bronze == pytest.approx(0.6)  # half
    assert t.silver == pytest.approx(0.65)  # three quarters
    assert t.gold == pytest.approx(0.7)  # the pool's own score
    _assert_ladder(t, scores, 0.01)


def test_lower_is_better_values_as_documented() -> None:
    scores = _scores(trivial=10.0, pool=6.0, oracle=3.0, sample=12.0)
    t = set_thresholds("rmse", scores, se=0.1)
    assert t.is_lower_better is True
    assert t.as_dict() == pytest.approx({"median": 9.0, "bronze": 8.0, "silver": 7.0, "gold": 6.0})
    _assert_ladder(t, scores, 0.1)


@pytest.mark.parametrize("metric", ["roc_auc", "rmse"])
def test_simple_and_strong_set_nothing(metric: str) -> None:
    """No selection bonus: a baseline that does better on the test set moves no threshold."""
    lower = metric == "rmse"
    trivial, pool, oracle, sample = (4.0, 2.0, 1.0, 5.0) if lower else (0.5, 0.8, 0.95, 0.4)
    reference = set_thresholds(metric, _scores(trivial, pool, oracle, sample), se=0.005)
    for other in ((1.5, 3.0), (3.0, 1.5)) if lower else ((0.9, 0.6), (0.6, 0.9)):
        moved = set_thresholds(metric, _scores(trivial, pool, oracle, sample, *other), se=0.005)
        assert moved == reference


def test_thresholds_are_stored_at_five_digits_toward_the_easier_side() -> None:
    t = set_thresholds("roc_auc", _scores(0.5, 0.73333, 0.9, 0.5), se=0.001)
    assert (t.median, t.bronze, t.silver, t.gold) == (0.55833, 0.61666, 0.67499, 0.73333)  # down
    lower = set_thresholds("rmse", _scores(1.0, 0.73333, 0.5, 1.2), se=0.001)
    assert (lower.median, lower.bronze, lower.silver) == (0.93334, 0.86667, 0.8)  # up


@pytest.mark.parametrize("metric", ["accuracy", "rmse"])
def test_a_replica_of_the_pool_reaches_gold_exactly(metric: str) -> None:
    """Reported scores sit on the 5-digit grid; gold is the pool's one itself, not a neighbour."""
    rng = random.Random(metric)
    lower = metric == "rmse"
    accepted = 0
    for _ in range(500):
        trivial, pool, oracle = sorted(round(rng.uniform(0.1, 0.99), 5) for _ in range(3))
        if lower:
            trivial, pool, oracle = oracle, pool, trivial
        try:
            t = set_thresholds(metric, _scores(trivial, pool, oracle, trivial), se=0.002)
        except Rejected:
            continue
        accepted += 1
        assert t.gold == pool
        assert at_least(pool, t.gold, lower) and at_least(oracle, t.gold, lower)
    assert accepted > 100


def test_as_dict_holds_the_four_medals_only() -> None:
    t = set_thresholds("mae", _scores(10.0, 6.0, 3.0, 12.0), se=0.1)
    assert list(t.as_dict()) == list(MEDALS)


@pytest.mark.parametrize("metric", HIGHER + LOWER)
def test_every_implemented_metric_orders_its_medals(metric: str) -> None:
    scores = (
        _scores(trivial=2.0, pool=1.2, oracle=0.5, sample=2.5)
        if metric in LOWER
        else _scores(trivial=0.5, pool=0.72, oracle=0.9, sample=0.5)
    )
    t = set_thresholds(metric, scores, se=0.01)
    assert t.is_lower_better == (metric in LOWER)
    _assert_ladder(t, scores, 0.01)


def test_random_ladders_accepted_are_always_sound() -> None:
    """Property: whatever is accepted is ordered, over the noise, reachable, above the sample."""
    rng = random.Random(7)
    accepted = 0
    for _ in range(3000):
        metric = rng.choice(HIGHER + LOWER)
        values = sorted(rng.uniform(0.0, 1.0) for _ in range(4))
        scale = 1.0
        if metric in LOWER:  # losses: trivial is the largest
            scale = 10 ** rng.uniform(-6, 2)
            values = [v * scale for v in reversed(values)]
        sample, trivial, pool, oracle = values
        se = rng.uniform(0.0, 0.05) * scale
        scores = _scores(trivial, pool, oracle, sample, simple=rng.random(), strong=rng.random())
        try:
            t = set_thresholds(metric, scores, se=se)
        except Rejected:
            continue
        accepted += 1
        _assert_ladder(t, scores, se)
    assert accepted > 500


def test_steps_of_reports_each_step_and_its_size_in_se() -> None:
    scores = _scores(trivial=10.0, pool=6.0, oracle=3.0, sample=12.0)
    t = set_thresholds("rmse", scores, se=0.5)
    steps = steps_of(t, scores["oracle"], 0.5).as_dict()
    assert steps["steps"] == {"bronze": 1.0, "silver": 1.0, "gold": 1.0, "oracle": 3.0}
    assert steps["steps_in_se"] == {"bronze": 2.0, "silver": 2.0, "gold": 2.0, "oracle": 6.0}
    assert (steps["bootstrap_se"], steps["min_step_se"]) == (0.5, MIN_STEP_SE)


# --- rejections --------------------------------------------------------------------------


def test_min_gap_bounded_and_unbounded() -> None:
    assert min_gap("accuracy", 0.5) == 0.01
    assert min_gap("roc_auc", 0.5) == 0.01
    assert min_gap("rmse", 100.0) == pytest.approx(2.0)
    assert min_gap("log_loss", -3.0) == pytest.approx(0.06)
    assert min_gap("rmse", 0.0) == 1e-6


@pytest.mark.parametrize(
    ("metric", "scores"),
    [
        ("accuracy", _scores(0.5, 0.509, 0.9, 0.4, simple=0.7)),
        ("accuracy", _scores(0.5, 0.45, 0.9, 0.4)),
        ("rmse", _scores(100.0, 98.5, 50.0, 120.0, strong=70.0)),
        ("rmse", _scores(100.0, 101.0, 50.0, 120.0)),
    ],
    ids=["higher-within-gap", "higher-worse-than-trivial", "lower-within-gap", "lower-worse"],
)
def test_no_learnable_signal_rejected(metric: str, scores: dict[str, float]) -> None:
    """The pool decides; a baseline that beats it on the test set does not rescue the task."""
    with pytest.raises(Rejected, match="no learnable signal"):
        set_thresholds(metric, scores, se=0.0)


@pytest.mark.parametrize(
    ("metric", "scores", "se"),
    [
        ("roc_auc", _scores(0.5, 0.8, 0.805, 0.5), 0.0),
        ("roc_auc", _scores(0.5, 0.8, 0.8, 0.5), 0.0),
        ("roc_auc", _scores(0.5, 0.8, 0.75, 0.5), 0.0),
        ("roc_auc", _scores(0.5, 0.8, 0.85, 0.5), 0.04),  # 0.05 < 1.5 SE = 0.06
        ("mae", _scores(10.0, 5.0, 4.9, 12.0), 0.0),
        ("mae", _scores(10.0, 5.0, 5.5, 12.0), 0.0),
    ],
    ids=["tiny", "equal", "oracle-worse", "within-noise", "lower-tiny", "lower-oracle-worse"],
)
def test_no_headroom_to_the_oracle_rejected(metric: str, scores: dict, se: float) -> None:
    """Gold must be a real step below the oracle: by the gap and by the test noise."""
    with pytest.raises(Rejected, match="no headroom"):
        set_thresholds(metric, scores, se=se)


@pytest.mark.parametrize(("metric", "lower"), [("accuracy", False), ("rmse", True)])
def test_steps_finer_than_the_noise_rejected_naming_the_step(metric: str, lower: bool) -> None:
    """Span 0.2: each step is 0.05, accepted at 1.5 SE <= 0.05 and rejected just above."""
    scores = _scores(1.0, 0.8, 0.5, 1.2) if lower else _scores(0.5, 0.7, 0.9, 0.4)
    set_thresholds(metric, scores, se=0.05 / MIN_STEP_SE - 1e-6)
    with pytest.raises(Rejected, match="finer than test noise") as info:
        set_thresholds(metric, scores, se=0.04)
    assert "median->bronze step 0.05 < 1.5 bootstrap SE (0.06)" in str(info.value)


@pytest.mark.parametrize(
    ("metric", "scores"),
    [
        ("accuracy", _scores(0.5, 0.7, 0.9, 0.55)),  # exactly the median
        ("accuracy", _scores(0.5, 0.7, 0.9, 0.58)),  # between median and bronze
        ("rmse", _scores(10.0, 6.0, 3.0, 9.0)),  # exactly the median
        ("rmse", _scores(10.0, 6.0, 3.0, 5.0)),  # better than gold
    ],
    ids=["higher-at-median", "higher-above", "lower-at-median", "lower-beats-gold"],
)
def test_sample_not_worse_than_median_rejected(metric: str, scores: dict[str, float]) -> None:
    with pytest.raises(Rejected, match="sample submission") as info:
        set_thresholds(metric, scores, se=0.0)
    assert "median" in str(info.value)


def test_sample_just_worse_than_median_is_accepted() -> None:
    t = set_thresholds("accuracy", _scores(0.5, 0.7, 0.9, 0.549), se=0.0)
    assert t.median == pytest.approx(0.55)
    t = set_thresholds("rmse", _scores(10.0, 6.0, 3.0, 9.001), se=0.0)
    assert t.median == pytest.approx(9.0)


def test_medals_collapsing_after_rounding_rejected() -> None:
    """Tiny losses: the gap floor passes, but five digits cannot keep the medals apart."""
    with pytest.raises(Rejected, match="not strictly ordered"):
        set_thresholds("rmse", _scores(4e-5, 2e-5, 1.0e-5, 5e-5), se=0.0)


@pytest.mark.parametrize("rung", ["trivial", "pool", "oracle", "sample", "simple"])
def test_a_non_finite_score_anywhere_rejects(rung: str) -> None:
    scores = _scores(0.5, 0.7, 0.9, 0.5)
    scores[rung] = float("nan")
    with pytest.raises(Rejected, match=rung):
        set_thresholds("accuracy", scores, se=0.01)


@pytest.mark.parametrize("se", [float("nan"), float("inf"), -0.1])
def test_a_broken_standard_error_rejects(se: float) -> None:
    with pytest.raises(Rejected, match="bootstrap_se"):
        set_thresholds("accuracy", _scores(0.5, 0.7, 0.9, 0.5), se=se)
