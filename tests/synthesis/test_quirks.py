"""Quirk mechanisms: each renders valid columns, deterministically, and the rule reads them."""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import polars as pl
import pytest
from sandforge.agents.providers import get_provider
from sandforge.agents.recipe import Recipe
from sandforge.seeds.card import Quirk, SeedCard
from sandforge.seeds.registry import load_all
from sandforge.synthesis.quirks import haversine_km
from sandforge.synthesis.synthesize import synthesize
from sandforge.validators.expectations import validate_task_data

ALL_WITH_COLUMNS = [
    Quirk.TIME_COLUMN,
    Quirk.GEO_FEATURES,
    Quirk.HIGH_CARDINALITY,
    Quirk.LEAKAGE_TRAP,
    Quirk.HEAVY_TAILS,
]


def _card(seed_id: str, quirks: list[Quirk] | None = None) -> SeedCard:
    card = next(c for c in load_all() if c.id == seed_id)
    return card if quirks is None else card.model_copy(update={"quirks": quirks})


def _recipe(card: SeedCard, rng_seed: int) -> Recipe:
    provider = get_provider()
    dna = provider.extractor.extract(card)
    plan = provider.strategist.mutate(dna, rng_seed, frozenset())
    return provider.designer.design(dna, plan, rng_seed)


@pytest.fixture(scope="module", params=[3, 77])
def quirky(request: pytest.FixtureRequest) -> Recipe:
    return _recipe(_card("new-york-city-taxi-fare-prediction", ALL_WITH_COLUMNS), request.param)


def test_every_mechanism_renders_valid_columns(quirky: Recipe) -> None:
    data = synthesize(quirky)
    names = [c.name for c in quirky.quirk_columns()]
    assert data.train.columns[1 : 1 + len(quirky.features) + len(names)][-len(names) :] == names
    table = pl.concat([data.train.select(names), data.test.select(names)])
    assert table.null_count().sum_horizontal().item() == 0
    stamps = [dt.datetime.fromisoformat(s) for s in table["recorded_at"]]
    assert len({s.hour for s in stamps}) == 24 and len({s.weekday() for s in stamps}) == 7
    for name in ("origin_lat", "dest_lat"):
        assert table[name].is_between(-90, 90).all()
    for name in ("origin_lon", "dest_lon"):
        assert table[name].is_between(-180, 180).all()
    points = ("origin_lat", "origin_lon", "dest_lat", "dest_lon")
    km = haversine_km(*(table[n].to_numpy() for n in points))
    assert 0.3 < np.median(km) < 30  # trips within one city
    codes = table["unit_code"].to_list()
    assert all(re.fullmatch(r"[A-Z]/\d+/[PS]", c) for c in codes)
    assert data.train["unit_code"].n_unique() > quirky.n_train / 2  # many levels
    assert len({c.split("/")[0] for c in codes}) <= 8  # few letters: the part that generalizes
    amount = table["recorded_amount"].to_numpy()
    assert amount.min() >= 0 and amount.max() > 20 * np.median(amount)  # heavy right tail
    report = validate_task_data(quirky, data)
    assert report.success, report.failed


def test_same_recipe_same_bytes_and_quirks_leave_the_features_alone(quirky: Recipe) -> None:
    first, again = synthesize(quirky), synthesize(quirky)
    assert first.train.equals(again.train) and first.test.equals(again.test)
    plain = synthesize(quirky.model_copy(update={"quirks": []}))
    features = [quirky.id_column, *(f.name for f in quirky.features)]
    assert first.train.select(features).equals(plain.train.select(features))
    assert not first.train.equals(plain.train)  # the quirks' signal moved the targets


def test_the_leaky_column_tracks_the_target_in_train_only(quirky: Recipe) -> None:
    data = synthesize(quirky)
    target = quirky.targets[0].name
    train = np.corrcoef(data.train["followup_reading"], data.train[target])[0, 1]
    test = np.corrcoef(data.test["followup_reading"], data.answers[target])[0, 1]
    assert abs(train) > 0.8 and abs(test) < 0.2
    description = get_provider().writer.write(quirky)
    assert "recorded after the outcome was known" in description


def test_the_rule_reads_the_derived_quantities(quirky: Recipe) -> None:
    """Under a linear rule the noise-free target follows the log trip distance, the hour's
    cycle and the code's number, none of which a raw column shows."""
    linear = quirky.rule.model_copy(update={"family": "linear"})
    data = synthesize(quirky.model_copy(update={"rule": linear}))
    test, clean = data.test, data.oracle_submission[quirky.targets[0].name].to_numpy()

    def r(x) -> float:
        return abs(float(np.corrcoef(np.asarray(x, dtype=float), clean)[0, 1]))

    names = ("origin_lat", "origin_lon", "dest_lat", "dest_lon")
    log_km = np.log(haversine_km(*(test[n].to_numpy() for n in names)))
    assert r(log_km) > 0.2 and max(r(test[n]) for n in names) < 0.15
    hours = [dt.datetime.fromisoformat(s).hour for s in test["recorded_at"]]
    cycle = max(r(np.cos(2 * np.pi * (np.array(hours) - h) / 24)) for h in range(24))
    assert cycle > 0.15
    numbers = [int(c.split("/")[1]) for c in test["unit_code"]]
    assert r(numbers) > 0.1


def test_class_imbalance_keeps_a_rare_class() -> None:
    card = _card("tabular-playground-series-dec-2021")
    shares = []
    for seed in (1, 2, 3):
        recipe = _recipe(card, seed)
        assert [q.quirk for q in recipe.quirks] == ["class_imbalance"]
        data = synthesize(recipe)
        target = recipe.targets[0].name
        labels = pl.concat([data.train[target], data.answers[target]])
        counts = labels.value_counts()["count"].to_numpy()
        shares.append((counts.min() / counts.sum(), counts.max() / counts.min()))
    assert all(rare <= 0.04 for rare, _ in shares)
    assert all(ratio >= 10 for _, ratio in shares)  # not the 3-7x of before
