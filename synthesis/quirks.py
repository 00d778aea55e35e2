"""Seed craft as data: one mechanism per recipe quirk (agents.recipe.QuirkSpec).

A mechanism renders columns a seed competition was known for (timestamps, coordinates,
compound codes, a leaky follow-up column, heavy-tailed amounts) and, where the craft is a
derived feature, the standardized derived quantity the target moves with (`QuirkTable.mix`):
the hour of a timestamp, the distance between two points, the parts of a code, the log of an
amount. A solver that works on the raw column misses most of that signal; one that does the
craft gets it, which the ladder's craft checks measure (validators/craft_checks.py).

Each quirk draws from its own generator (rng seed, 13, quirk index), so a recipe without
quirks synthesizes exactly as before and adding a quirk never shifts the other draws.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import polars as pl
from sandforge.agents.recipe import QuirkSpec, Recipe

_EARTH_KM = 6371.0
_DECKS = list("ABCDEFGT")
_SIDES = ["P", "S"]


def _standard(x: np.ndarray) -> np.ndarray:
    return (x - x.mean()) / max(float(x.std()), 1e-12)


@dataclass
class _Rendered:
    columns: list[pl.Series] = field(default_factory=list)
    signal: np.ndarray | None = None  # standardized derived quantity, or None


def haversine_km(lat1, lon1, lat2, lon2) -> np.ndarray:
    """Great-circle distance; the geo craft computes the same from the public columns."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp, dl = p2 - p1, np.radians(np.asarray(lon2) - np.asarray(lon1))
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * _EARTH_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def _time_column(spec: QuirkSpec, rng: np.random.Generator, n: int) -> _Rendered:
    """Timestamps over two years; the signal is a daily cycle plus a weekend effect."""
    start = np.datetime64(f"{int(rng.integers(2015, 2024))}-01-01T00:00:00", "s")
    seconds = rng.integers(0, 2 * 365 * 86_400, size=n)
    stamps = start + seconds.astype("timedelta64[s]")
    hour = (seconds % 86_400) / 3600
    days = (stamps.astype("datetime64[D]").astype(np.int64) + 3) % 7  # 1970-01-01 was Thursday
    peak = rng.uniform(0, 24)
    weekend = rng.choice([-1.0, 1.0]) * rng.uniform(0.6, 1.0)
    signal = np.cos(2 * np.pi * (hour - peak) / 24) + weekend * (days >= 5)
    text = np.datetime_as_string(stamps, unit="s").tolist()
    (column,) = spec.columns
    return _Rendered([pl.Series(column.name, text, dtype=pl.String)], _standard(signal))


def _geo_features(spec: QuirkSpec, rng: np.random.Generator, n: int) -> _Rendered:
    """Start and end points in one city; the signal is the log distance between them."""
    lat0, lon0 = rng.uniform(-45, 60), rng.uniform(-150, 150)
    lat1 = lat0 + rng.normal(0, 0.04, n)
    lon1 = lon0 + rng.normal(0, 0.04, n) / np.cos(np.radians(lat0))
    km = rng.lognormal(np.log(3.0), 0.7, n)
    bearing = rng.uniform(0, 2 * np.pi, n)
    lat2 = lat1 + km * np.cos(bearing) / 111.2
    lon2 = lon1 + km * np.sin(bearing) / (111.2 * np.cos(np.radians(lat1)))
    points = [np.round(v, 5) for v in (lat1, lon1, lat2, lon2)]
    signal = np.log(haversine_km(*points) + 0.05)
    names = [c.name for c in spec.columns]
    series = [pl.Series(name, v, dtype=pl.Float64) for name, v in zip(names, points, strict=True)]
    return _Rendered(series, _standard(signal))


def _high_cardinality(spec: QuirkSpec, rng: np.random.Generator, n: int) -> _Rendered:
    """Compound codes like "B/12/P": letter, number and side each carry part of the signal,
    while the whole code has almost as many levels as rows."""
    decks = rng.choice(len(_DECKS), size=n, p=rng.dirichlet(np.full(len(_DECKS), 4.0)))
    numbers = rng.integers(1, max(30, n // 3), size=n)
    sides = rng.integers(0, 2, size=n)
    deck_effect = rng.standard_normal(len(_DECKS))
    side_effect = rng.choice([-1.0, 1.0]) * rng.uniform(0.4, 0.8)
    trend = rng.choice([-1.0, 1.0]) * rng.uniform(0.5, 0.9)
    signal = deck_effect[decks] + side_effect * (2 * sides - 1) + trend * _standard(numbers)
    codes = [f"{_DECKS[d]}/{k}/{_SIDES[s]}" for d, k, s in zip(decks, numbers, sides, strict=True)]
    (column,) = spec.columns
    return _Rendered([pl.Series(column.name, codes, dtype=pl.String)], _standard(signal))


def _heavy_tails(spec: QuirkSpec, rng: np.random.Generator, n: int) -> _Rendered:
    """A log-normal amount: the rule reads its log, so a log transform helps linear models."""
    z = rng.standard_normal(n)
    amount = np.round(np.exp(np.log(rng.uniform(20, 200)) + rng.uniform(1.3, 1.8) * z), 2)
    (column,) = spec.columns
    signal = np.log(np.maximum(amount, 0.01))
    return _Rendered([pl.Series(column.name, amount, dtype=pl.Float64)], _standard(signal))


def _no_columns(spec: QuirkSpec, rng: np.random.Generator, n: int) -> _Rendered:
    """class_imbalance acts through the class priors (NoiseSpec.minority_rate); leakage_trap
    needs the outcome and is rendered afterwards (`QuirkTable.columns`)."""
    return _Rendered()


MECHANISMS: dict[str, Callable[[QuirkSpec, np.random.Generator, int], _Rendered]] = {
    "time_column": _time_column,
    "geo_features": _geo_features,
    "high_cardinality": _high_cardinality,
    "heavy_tails": _heavy_tails,
    "class_imbalance": _no_columns,
    "leakage_trap": _no_columns,
}


def match_shares(logits: np.ndarray, priors: np.ndarray) -> np.ndarray:
    """Logits shifted per class so the mean class probabilities equal `priors`: a strong
    signal otherwise pulls a rare class back toward the others (class_imbalance)."""
    shift = np.zeros(logits.shape[1])
    for _ in range(200):
        z = logits + shift
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        shift += np.log(priors) - np.log(p.mean(axis=0))
    return logits + shift


class QuirkTable:
    """Every quirk of a recipe rendered for all rows (train first, then test)."""

    def __init__(self, recipe: Recipe, n: int, n_train: int):
        self._recipe, self._n, self._n_train = recipe, n, n_train
        self._rngs = [
            np.random.default_rng([recipe.rng_seed, 13, i]) for i in range(len(recipe.quirks))
        ]
        self._mixing = np.random.default_rng([recipe.rng_seed, 13, len(recipe.quirks)])
        self._rendered = [
            MECHANISMS[spec.quirk](spec, rng, n)
            for spec, rng in zip(recipe.quirks, self._rngs, strict=True)
        ]

    def mix(self, latent: np.ndarray) -> np.ndarray:
        """The rule's standardized latent plus each derived quantity, weighted by its
        strength with a sign drawn per call (each class of a categorical target gets its
        own), standardized again. Added, not fed to the rule family, so every family's
        target moves with the quantity the same simple way: a craft that recovers the
        quantity pays whatever the rule."""
        derived = [
            (spec.strength, r.signal)
            for spec, r in zip(self._recipe.quirks, self._rendered, strict=True)
            if r.signal is not None
        ]
        if not derived:
            return latent
        total = latent.copy()
        for strength, signal in derived:
            weight = strength * self._mixing.uniform(0.8, 1.2) * self._mixing.choice([-1.0, 1.0])
            total = total + weight * signal
        return _standard(total)

    def columns(self, observed: list[np.ndarray]) -> list[pl.Series]:
        """The rendered columns in `Recipe.quirk_columns` order; `observed` holds each
        target's observed values (label indices for classes) for all rows; the leakage trap
        follows the first."""
        out: list[pl.Series] = []
        parts = zip(self._recipe.quirks, self._rngs, self._rendered, strict=True)
        for spec, rng, rendered in parts:
            if spec.quirk == "leakage_trap":
                out.append(self._leak(spec, rng, observed[0]))
            out.extend(rendered.columns)
        return out

    def _leak(self, spec: QuirkSpec, rng: np.random.Generator, y: np.ndarray) -> pl.Series:
        """Recorded after the outcome: it tracks the target in train; in test the same values
        are shuffled across rows, so it carries nothing a model can use there."""
        score = _standard(y.astype(float)) + rng.normal(0.0, 0.3, self._n)
        test = np.arange(self._n_train, self._n)
        score[test] = score[rng.permutation(test)]
        (column,) = spec.columns
        values = np.round(50.0 + 12.0 * score, 1)
        return pl.Series(column.name, values, dtype=pl.Float64)
