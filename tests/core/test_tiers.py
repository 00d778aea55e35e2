"""The tier rules every grader shares: names and order, the stored precision, the comparison."""

from __future__ import annotations

import random

import pytest

from sandforge.tiers import (
    DIGITS,
    SANDMLE_REWARD,
    TIERS,
    VALID_REWARD,
    at_least,
    better,
    tier_of,
    toward_easier,
)

HIGHER = {"median": 0.6, "bronze": 0.7, "silver": 0.8, "gold": 0.9}


def test_tiers_weakest_first_and_rewards_grow_with_them() -> None:
    assert TIERS == ("median", "bronze", "silver", "gold")
    rewards = [VALID_REWARD, *(SANDMLE_REWARD[tier] for tier in TIERS)]
    assert rewards == sorted(rewards) and rewards == [0.2, 0.3, 0.7, 0.8, 0.9]


@pytest.mark.parametrize(
    ("score", "tier"),
    [
        (0.95, "gold"),
        (0.9, "gold"),
        (0.89999, "silver"),
        (0.7, "bronze"),
        (0.6, "median"),
        (0.59999, None),
        (None, None),
    ],
)
def test_tier_of_is_inclusive_in_either_direction(score: float | None, tier: str | None) -> None:
    assert tier_of(score, HIGHER, lower=False) == tier
    mirrored = {name: -value for name, value in HIGHER.items()}
    assert tier_of(None if score is None else -score, mirrored, lower=True) == tier


def test_comparisons() -> None:
    assert at_least(0.5, 0.5, lower=False) and at_least(0.5, 0.5, lower=True)
    assert not better(0.5, 0.5, lower=False) and not better(0.5, 0.5, lower=True)
    assert better(0.4, 0.5, lower=True) and better(0.6, 0.5, lower=False)


def test_toward_easier_keeps_every_score_that_reached_the_raw_value() -> None:
    rng = random.Random(3)
    for _ in range(5000):
        value = rng.uniform(-50, 50) * 10 ** rng.randint(-4, 2)
        for lower in (False, True):
            stored = toward_easier(value, lower)
            assert round(stored, DIGITS) == stored  # on the grid
            assert abs(stored - value) < 10**-DIGITS
            assert at_least(value, stored, lower)  # whoever reached value reaches stored
            reached = round(value, DIGITS)  # a reported score at or beyond the raw value
            if at_least(reached, value, lower):
                assert at_least(reached, stored, lower)


def test_a_value_on_the_grid_stays_itself() -> None:
    for value in (0.7, 13.69271, 1e-05, -0.00003, 0.0, 123.45678):
        assert toward_easier(value, False) == toward_easier(value, True) == value
