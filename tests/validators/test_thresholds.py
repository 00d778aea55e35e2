"""Medal thresholds from the baseline ladder, and when a task is rejected instead."""

from __future__ import annotations

import itertools
import random

import pytest
from sandforge.validators.metrics import METRICS
from sandforge.validators.thresholds import min_gap, set_thresholds

from sandforge.pipeline import Rejected
from sandforge.tiers import Thresholds, at_least

MEDALS = ("median", "bronze", "silver", "gold")
HIGHER = [m.name for m in METRICS.values() if m.implemented and not m.lower_is_better]
LOWER = [m.name for m in METRICS.values() if m.implemented and m.lower_is_better]


def _scores(trivial, simple, strong, oracle, sample) -> dict[str, float]:
    return {
        "trivial": trivial,
        "simple": simple,
        "strong": strong,
        "oracle": oracle,
        "sample": sample,
    }


def _assert_ladder(t: Thresholds, scores: dict[str, float]) -> None:
    """Medals get strictly better in the metric's direction, and the oracle reaches gold."""
    sign = -1.0 if t.is_lower_better else 1.0
    values = [sign * t.as_dict()[k] for k in MEDALS]
    assert all(a < b for a, b in itertools.pairwise(values)), t
    assert sign * t.gold <= sign * scores["oracle"]
    assert sign * t.median > sign * scores["sample"]
    assert sign * t.median > sign * scores["trivial"]
    best = max(sign * scores["simple"], sign * scores["strong"])
    assert sign * t.bronze <= best  # the best baseline reaches bronze
    assert all(round(v, 5) == v for v in t.as_dict().values())  # stored at 5 digits


# --- the documented values ---------------------------------------------------------------


def test_higher_is_better_values_as_documented() -> None:
    scores = _scores(trivial=0.5, simple=0.7, strong=0.8, oracle=0.95, sample=0.45)
    t = set_thresholds("accuracy", scores)
    assert t.is_lower_better is False
    assert t.median == pytest.approx(0.65)  # halfway from trivial to the best baseline
    assert t.bronze == pytest.approx(0.8)  # the best baseline (strong here)
    assert t.silver == pytest.approx(0.85)  # a third of the way on to the oracle
    assert t.gold == pytest.approx(0.9)  # two thirds of the way on to the oracle
    _assert_ladder(t, scores)


def test_lower_is_better_values_as_documented() -> None:
    scores = _scores(trivial=10.0, simple=6.0, strong=8.0, oracle=3.0, sample=12.0)
    t = set_thresholds("rmse", scores)
    assert t.is_lower_better is True
    assert t.as_dict() == pytest.approx({"median": 8.0, "bronze": 6.0, "silver": 5.0, "gold": 4.0})
    assert t.median > t.bronze > t.silver > t.gold
    _assert_ladder(t, scores)


@pytest.mark.parametrize("metric", ["roc_auc", "rmse"])
def test_best_baseline_is_chosen_in_the_metric_direction(metric: str) -> None:
    lower = metric == "rmse"
    good, bad = (2.0, 3.0) if lower else (0.8, 0.7)
    trivial, oracle, sample = (4.0, 1.0, 5.0) if lower else (0.5, 0.95, 0.4)
    for simple, strong in ((good, bad), (bad, good)):
        t = set_thresholds(metric, _scores(trivial, simple, strong, oracle, sample))
        assert t.bronze == pytest.approx(good)


def test_thresholds_are_stored_at_five_digits_toward_the_easier_side() -> None:
    t = set_thresholds("roc_auc", _scores(0.5, 0.7, 0.6, 0.8, 0.5))
    assert (t.silver, t.gold, t.median, t.bronze) == (0.73333, 0.76666, 0.6, 0.7)  # down
    lower = set_thresholds("rmse", _scores(1.0, 0.6, 0.7, 0.5, 1.2))
    assert (lower.silver, lower.gold) == (0.56667, 0.53334)  # up: easier when lower is better


@pytest.mark.parametrize("metric", ["accuracy", "rmse"])
def test_a_replica_of_the_best_baseline_reaches_bronze_exactly(metric: str) -> None:
    """Reported scores sit on the 5-digit grid; bronze is the best one itself, not a neighbour."""
    rng = random.Random(metric)
    lower = metric == "rmse"
    for _ in range(500):
        trivial, best, oracle = sorted(round(rng.uniform(0.1, 0.99), 5) for _ in range(3))
        if lower:
            trivial, best, oracle = oracle, best, trivial
        try:
            t = set_thresholds(metric, _scores(trivial, best, trivial, oracle, trivial))
        except Rejected:
            continue
        assert t.bronze == best
        assert at_least(best, t.bronze, lower) and at_least(oracle, t.gold, lower)


def test_as_dict_holds_the_four_medals_only() -> None:
    t = set_thresholds("mae", _scores(10.0, 6.0, 8.0, 3.0, 12.0))
    assert list(t.as_dict()) == list(MEDALS)


@pytest.mark.parametrize("metric", HIGHER + LOWER)
def test_every_implemented_metric_orders_its_medals(metric: str) -> None:
    scores = (
        _scores(trivial=2.0, simple=1.2, strong=1.4, oracle=0.5, sample=2.5)
        if metric in LOWER
        else _scores(trivial=0.5, simple=0.72, strong=0.7, oracle=0.9, sample=0.5)
    )
    t = set_thresholds(metric, scores)
    assert t.is_lower_better == (metric in LOWER)
    _assert_ladder(t, scores)


def test_random_ladders_accepted_are_always_sound() -> None:
    """Property: whatever is accepted is ordered, reachable by the oracle, above the sample."""
    rng = random.Random(7)
    accepted = 0
    for _ in range(3000):
        metric = rng.choice(HIGHER + LOWER)
        values = sorted(rng.uniform(0.0, 1.0) for _ in range(4))
        if metric in LOWER:  # losses: trivial is the largest
            values = [v * 10 ** rng.uniform(-6, 2) for v in reversed(values)]
        sample, trivial, best, oracle = values
        other = best - (best - trivial) * rng.uniform(0.0, 1.0)
        pair = (best, other) if rng.random() < 0.5 else (other, best)
        scores = _scores(trivial, *pair, oracle=oracle, sample=sample)
        try:
            t = set_thresholds(metric, scores)
        except Rejected:
            continue
        accepted += 1
        _assert_ladder(t, scores)
    assert accepted > 1000


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
        ("accuracy", _scores(0.5, 0.509, 0.505, 0.9, 0.4)),
        ("accuracy", _scores(0.5, 0.45, 0.4, 0.9, 0.4)),
        ("rmse", _scores(100.0, 98.5, 99.0, 50.0, 120.0)),
        ("rmse", _scores(100.0, 101.0, 130.0, 50.0, 120.0)),
    ],
    ids=["higher-within-gap", "higher-worse-than-trivial", "lower-within-gap", "lower-worse"],
)
def test_no_learnable_signal_rejected(metric: str, scores: dict[str, float]) -> None:
    with pytest.raises(Rejected, match="no learnable signal"):
        set_thresholds(metric, scores)


def test_signal_just_past_the_gap_is_accepted() -> None:
    set_thresholds("accuracy", _scores(0.5, 0.515, 0.505, 0.9, 0.4))
    set_thresholds("rmse", _scores(100.0, 97.5, 99.0, 50.0, 120.0))


@pytest.mark.parametrize(
    ("metric", "scores"),
    [
        ("roc_auc", _scores(0.5, 0.8, 0.7, 0.805, 0.5)),
        ("roc_auc", _scores(0.5, 0.8, 0.7, 0.8, 0.5)),
        ("roc_auc", _scores(0.5, 0.8, 0.7, 0.75, 0.5)),
        ("mae", _scores(10.0, 5.0, 6.0, 4.9, 12.0)),
        ("mae", _scores(10.0, 5.0, 6.0, 5.5, 12.0)),
    ],
    ids=["higher-tiny", "higher-equal", "higher-oracle-worse", "lower-tiny", "lower-oracle-worse"],
)
def test_no_headroom_to_the_oracle_rejected(metric: str, scores: dict[str, float]) -> None:
    """An oracle at or below the best baseline can never make gold harder than bronze."""
    with pytest.raises(Rejected, match="no headroom") as info:
        set_thresholds(metric, scores)
    assert "gold would be trivial" in str(info.value)


@pytest.mark.parametrize(
    ("metric", "scores"),
    [
        ("accuracy", _scores(0.5, 0.7, 0.6, 0.9, 0.6)),  # exactly the median
        ("accuracy", _scores(0.5, 0.7, 0.6, 0.9, 0.68)),  # between median and bronze
        ("rmse", _scores(10.0, 6.0, 8.0, 3.0, 8.0)),  # exactly the median
        ("rmse", _scores(10.0, 6.0, 8.0, 3.0, 5.0)),  # better than bronze
    ],
    ids=["higher-at-median", "higher-above", "lower-at-median", "lower-beats-bronze"],
)
def test_sample_not_worse_than_median_rejected(metric: str, scores: dict[str, float]) -> None:
    with pytest.raises(Rejected, match="sample submission") as info:
        set_thresholds(metric, scores)
    assert "median" in str(info.value)


def test_sample_just_worse_than_median_is_accepted() -> None:
    t = set_thresholds("accuracy", _scores(0.5, 0.7, 0.6, 0.9, 0.599))
    assert t.median == pytest.approx(0.6)
    t = set_thresholds("rmse", _scores(10.0, 6.0, 8.0, 3.0, 8.001))
    assert t.median == pytest.approx(8.0)


def test_medals_collapsing_after_rounding_rejected() -> None:
    """Tiny losses: the gap floor passes, but six digits cannot keep the medals apart."""
    with pytest.raises(Rejected, match="not strictly ordered"):
        set_thresholds("rmse", _scores(4e-5, 2e-5, 3e-5, 1.88e-5, 5e-5))


@pytest.mark.parametrize("bad", [("trivial",), ("oracle",), ("simple", "strong")])
@pytest.mark.parametrize("metric", ["accuracy", "rmse"])
def test_nan_ladder_scores_are_rejected(metric: str, bad: tuple[str, ...]) -> None:
    scores = (
        _scores(10.0, 6.0, 8.0, 3.0, 12.0) if metric == "rmse" else _scores(0.5, 0.7, 0.6, 0.9, 0.4)
    )
    for name in bad:
        scores[name] = float("nan")
    with pytest.raises(Rejected):
        set_thresholds(metric, scores)


@pytest.mark.parametrize("rung", ["trivial", "simple", "strong", "oracle", "sample"])
def test_a_non_finite_score_anywhere_rejects(rung: str) -> None:
    scores = {"trivial": 0.5, "simple": 0.7, "strong": 0.72, "oracle": 0.9, "sample": 0.5}
    scores[rung] = float("nan")
    with pytest.raises(Rejected, match=rung):
        set_thresholds("accuracy", scores)
