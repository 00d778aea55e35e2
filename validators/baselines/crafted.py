"""The seed crafts a careful agent applies, as feature engineering on the public tables.

task.json's `quirks` name each quirk's craft and its columns' kinds (datetime, latitude,
longitude, code, numeric), the facts the task's description gives an agent. Each craft
returns (without, with) feature sets, name -> kind, derived from a base set; the columns it
derives are added to both frames. The solver pool fits on every craft's "with" set (gold is
set from it, so the reward pays for the craft); the craft checks (crafts/run.py) undo one
craft at a time to measure what it is worth.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import _common as ladder
import numpy as np

FeatureSet = dict[str, str]


def load_frames(task: ladder.Task) -> tuple[Any, Any, list[str]]:
    """The ladder's typed tables, with the quirks' timestamps and codes kept as text."""
    text = [n for q in task.quirks for n, k in q["columns"].items() if k in ("datetime", "code")]
    return ladder.load_frames(task, text)


def _of(quirk: dict, kind: str) -> list[str]:
    return [name for name, k in quirk["columns"].items() if k == kind]


def time_parts(quirk: dict, train, test, base: FeatureSet) -> tuple[FeatureSet, FeatureSet]:
    """Without: the timestamp as one number. With: hour, weekday and month as well."""
    import pandas as pd

    crafted = {}
    for name in _of(quirk, "datetime"):
        for frame in (train, test):
            stamp = pd.to_datetime(frame[name], errors="coerce")
            hour = stamp.dt.hour + stamp.dt.minute / 60
            frame[f"{name}__epoch"] = stamp.astype("int64") / 86_400e9
            frame[f"{name}__hour_sin"] = np.sin(2 * np.pi * hour / 24)
            frame[f"{name}__hour_cos"] = np.cos(2 * np.pi * hour / 24)
            frame[f"{name}__weekday"] = stamp.dt.weekday.astype(float)
            frame[f"{name}__weekend"] = (stamp.dt.weekday >= 5).astype(float)
            frame[f"{name}__month"] = stamp.dt.month.astype(float)
        crafted |= {c: "numeric" for c in train.columns if c.startswith(f"{name}__")}
    epochs = {c: "numeric" for c in crafted if c.endswith("__epoch")}
    return {**base, **epochs}, {**base, **crafted}


def geo_distance(quirk: dict, train, test, base: FeatureSet) -> tuple[FeatureSet, FeatureSet]:
    """Without: raw coordinates. With: the great-circle distance between the two points."""
    (lat1, lat2), (lon1, lon2) = _of(quirk, "latitude")[:2], _of(quirk, "longitude")[:2]
    for frame in (train, test):
        p1, p2 = np.radians(frame[lat1]), np.radians(frame[lat2])
        dl = np.radians(frame[lon2] - frame[lon1])
        a = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
        km = 2 * 6371.0 * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))
        frame["geo__km"], frame["geo__log_km"] = km, np.log1p(km)
    return base, {**base, "geo__km": "numeric", "geo__log_km": "numeric"}


def code_split(quirk: dict, train, test, base: FeatureSet) -> tuple[FeatureSet, FeatureSet]:
    """Without: the code as one many-level category. With: its parts, the number as a number."""
    crafted = dict(base)
    for name in _of(quirk, "code"):
        crafted.pop(name, None)
        for frame in (train, test):
            parts = frame[name].str.split("/", expand=True)
            for i in range(parts.shape[1]):
                as_number = np.asarray(
                    [float(p) if isinstance(p, str) and p.isdigit() else np.nan for p in parts[i]]
                )
                if np.isfinite(as_number).mean() > 0.5:
                    frame[f"{name}__{i}"] = as_number
                else:
                    frame[f"{name}__{i}"] = parts[i].astype(object)
        for i in range(3):
            column = f"{name}__{i}"
            if column in train:
                numeric = train[column].dtype.kind == "f"
                crafted[column] = "numeric" if numeric else "categorical"
    return base, crafted


def drop_leak(quirk: dict, train, test, base: FeatureSet) -> tuple[FeatureSet, FeatureSet]:
    """Without: the column recorded after the outcome is used. With: it is dropped."""
    leaks = {name: "numeric" for name in quirk["columns"]}
    for frame in (train, test):
        for name in leaks:
            frame[name] = frame[name].astype(float)
    return {**base, **leaks}, base


def log_transform(quirk: dict, train, test, base: FeatureSet) -> tuple[FeatureSet, FeatureSet]:
    """Without: the heavy-tailed amount as is. With: its log."""
    crafted = dict(base)
    for name in quirk["columns"]:
        crafted.pop(name, None)
        for frame in (train, test):
            frame[f"{name}__log"] = np.log1p(np.maximum(frame[name].astype(float), 0.0))
        crafted[f"{name}__log"] = "numeric"
    return base, crafted


def class_weights(quirk: dict, train, test, base: FeatureSet) -> tuple[FeatureSet, FeatureSet]:
    """A weighting, not a feature: the solver applies it (same features either way)."""
    return base, base


CRAFTS: dict[str, Callable[[dict, Any, Any, FeatureSet], tuple[FeatureSet, FeatureSet]]] = {
    "time_column": time_parts,
    "geo_features": geo_distance,
    "high_cardinality": code_split,
    "leakage_trap": drop_leak,
    "class_imbalance": class_weights,
    "heavy_tails": log_transform,
}


def variants(
    task: ladder.Task, train, test, base: FeatureSet
) -> list[tuple[FeatureSet, FeatureSet]]:
    """(without, with) feature sets per quirk of the task, in task order."""
    return [CRAFTS[q["quirk"]](q, train, test, base) for q in task.quirks]


def compose(base: FeatureSet, changed: list[FeatureSet]) -> FeatureSet:
    """`base` with every change made: each is a feature set derived from `base` (columns
    dropped from it, columns added to it)."""
    dropped = {n for c in changed for n in base if n not in c}
    added = {n: k for c in changed for n, k in c.items() if n not in base}
    return {n: k for n, k in base.items() if n not in dropped} | added


def crafted_features(task: ladder.Task, train, test) -> FeatureSet:
    """The task's features with every quirk's craft applied (derived columns added to both
    frames)."""
    base = dict(task.features)
    return compose(base, [with_ for _, with_ in variants(task, train, test, base)])
