"""Craft checks: for each quirk of the task, the same solver without and with its craft.

Run as `python run.py` in a folder holding train.csv, test.csv, task.json and quirks.json.
"With" applies every quirk's craft, as a careful agent would; quirk i's "without" undoes
only its own craft. So the gain is what leaving that one craft out costs, measured on a
solver that does the rest right (one missing craft cannot hide behind another). For quirk i
it writes `craft_<i>_without.csv` and `craft_<i>_with.csv`; `crafts.json` records each one's
seconds or error. The factory scores both on the test answers. One process, so scikit-learn
is imported once.
"""

import json
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
from _crafts import Task, load_frames, load_task, solve


def _of(quirk: dict, kind: str) -> list[str]:
    return [name for name, k in quirk["columns"].items() if k == kind]


def time_parts(task: Task, quirk: dict, train, test, base: dict) -> tuple[dict, dict]:
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


def geo_distance(task: Task, quirk: dict, train, test, base: dict) -> tuple[dict, dict]:
    """Without: raw coordinates. With: the great-circle distance between the two points."""
    (lat1, lat2), (lon1, lon2) = _of(quirk, "latitude")[:2], _of(quirk, "longitude")[:2]
    for frame in (train, test):
        p1, p2 = np.radians(frame[lat1]), np.radians(frame[lat2])
        dl = np.radians(frame[lon2] - frame[lon1])
        a = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
        km = 2 * 6371.0 * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))
        frame["geo__km"], frame["geo__log_km"] = km, np.log1p(km)
    return base, {**base, "geo__km": "numeric", "geo__log_km": "numeric"}


def code_split(task: Task, quirk: dict, train, test, base: dict) -> tuple[dict, dict]:
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


def drop_leak(task: Task, quirk: dict, train, test, base: dict) -> tuple[dict, dict]:
    """Without: the column recorded after the outcome is used. With: it is dropped."""
    leaks = {name: "numeric" for name in quirk["columns"]}
    for frame in (train, test):
        for name in leaks:
            frame[name] = frame[name].astype(float)
    return {**base, **leaks}, base


def log_transform(task: Task, quirk: dict, train, test, base: dict) -> tuple[dict, dict]:
    """Without: the heavy-tailed amount as is. With: its log (both with a linear model)."""
    crafted = dict(base)
    for name in quirk["columns"]:
        crafted.pop(name, None)
        for frame in (train, test):
            frame[f"{name}__log"] = np.log1p(np.maximum(frame[name].astype(float), 0.0))
        crafted[f"{name}__log"] = "numeric"
    return base, crafted


CRAFTS = {
    "time_column": time_parts,
    "geo_features": geo_distance,
    "high_cardinality": code_split,
    "leakage_trap": drop_leak,
    "heavy_tails": log_transform,
}


def _kinds(features: dict[str, str]) -> dict[str, str]:
    """Booleans and integers are numbers to the base solver."""
    return {n: "categorical" if k == "categorical" else "numeric" for n, k in features.items()}


def _compose(base: dict, changed: list[dict]) -> dict:
    """`base` with every change made: each is a feature set derived from `base` (columns
    dropped from it, columns added to it)."""
    dropped = {n for c in changed for n in base if n not in c}
    added = {n: k for c in changed for n, k in c.items() if n not in base}
    return {n: k for n, k in base.items() if n not in dropped} | added


def check(task: Task, index: int, variants: list[tuple[dict, dict]], train, test, ids) -> None:
    """Every craft but quirk `index`'s, then with it too."""
    base = _kinds(task.features)
    everything = _compose(base, [crafted for _, crafted in variants])
    others = [crafted for j, (_, crafted) in enumerate(variants) if j != index]
    undone = _compose(base, [*others, variants[index][0]])
    quirk = task.quirks[index]["quirk"]
    weights = [q["quirk"] == "class_imbalance" for q in task.quirks]
    options = {"solver": "linear" if quirk == "heavy_tails" else "trees"}
    balanced = {"class_weight": "balanced"} if any(weights) else {}
    unweighted = {} if quirk == "class_imbalance" else balanced
    solve(task, train, test, ids, undone, f"craft_{index}_without.csv", **options, **unweighted)
    solve(task, train, test, ids, everything, f"craft_{index}_with.csv", **options, **balanced)


def main() -> int:
    task = load_task()
    train, test, ids = load_frames(task)
    base = _kinds(task.features)
    variants = [  # (without, with) feature sets per quirk; crafts add their columns to frames
        (base, base)
        if q["quirk"] == "class_imbalance"
        else CRAFTS[q["quirk"]](task, q, train, test, base)
        for q in task.quirks
    ]
    report = {}
    for index in range(len(task.quirks)):
        start = time.perf_counter()
        try:
            check(task, index, variants, train, test, ids)
            report[str(index)] = {"seconds": time.perf_counter() - start}
        except Exception:
            report[str(index)] = {"error": traceback.format_exc(limit=5)}
    Path("crafts.json").write_text(json.dumps(report, indent=1) + "\n")
    return 0 if all("seconds" in entry for entry in report.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
