"""The careful agent (policy 6) and its time-boxed ensemble (policy 7).

What a careful Kaggler does with 50-200 rows and a description:
- reads the description: drops columns it says are recorded after the outcome, turns
  timestamps into hour/weekday/month/trend, coordinate pairs into distances, splits compound
  codes ("B/12/P") into parts, adds ratios and differences of columns sharing a unit;
- validates by cross-validation on the training rows only, grouped when an entity id repeats;
- selects among several model families by the task's own metric on out-of-fold predictions;
- makes the target and the output fit the metric: log1p targets for RMSLE, absolute loss for
  MAE or when targets are said to be recorded wrongly, temperature scaling for log loss,
  threshold and class-weight tuning for label metrics, cut tuning for kappa.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from _prep import imputed_ordinal, one_hot, ordinal
from _public import Public, columns_from, load, of_kind, valid_values, write
from sklearn.base import clone
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import HuberRegressor, LogisticRegression, Ridge
from sklearn.metrics import (
    accuracy_score,
    cohen_kappa_score,
    f1_score,
    mean_absolute_error,
    roc_auc_score,
)
from sklearn.model_selection import GroupKFold, KFold, StratifiedKFold
from sklearn.pipeline import make_pipeline

FOLDS = 4
LEAK = re.compile(
    r"(recorded|measured|known|logged|filled in|entered|computed|updated) after|after the "
    r"(outcome|fact|result|event|decision)|post[- ]outcome|not (known|available) (at|before|until)"
    r"|only known after|once the .* (known|decided|settled)",
    re.I,
)
GROUP_WORDS = re.compile(
    r"(same|repeat|several|multiple|recurring).*(rows|times|records)|identif", re.I
)
HGB = {"max_iter": 100, "learning_rate": 0.05, "max_depth": 3, "min_samples_leaf": 8}
HGB.update({"l2_regularization": 1.0, "early_stopping": False, "random_state": 0})
TREES = {"n_estimators": 100, "n_jobs": 1, "random_state": 0}


# --- features the description suggests -------------------------------------------------------


def _is_datetime(column: pd.Series) -> bool:
    values = column.dropna().astype(str)
    if len(values) == 0 or not values.str.contains(r"\d{4}-\d{2}-\d{2}|\d{1,2}:\d{2}").mean() > 0.9:
        return False
    return pd.to_datetime(values, errors="coerce").notna().mean() > 0.9


def _compound(column: pd.Series) -> str | None:
    """The separator of a compound code column ("B/12/P"), if every value has the same parts."""
    values = column.dropna().astype(str)
    for sep in ("/", "-", "_", ":", "|"):
        counts = values.str.count(re.escape(sep))
        if len(values) and counts.min() >= 1 and counts.nunique() == 1:
            return sep
    return None


def _coordinate_pairs(pub: Public, numeric: list[str]) -> list[tuple[str, str]]:
    pairs = []
    for lat in numeric:
        text = f"{lat} {pub.meanings.get(lat, '')}".lower()
        if "lat" not in lat.lower() and "latitude" not in text:
            continue
        for candidate in (
            lat.lower().replace("latitude", "longitude"),
            lat.lower().replace("lat", "lon"),
        ):
            match = [
                c for c in numeric if c.lower() in (candidate, candidate.replace("lon", "lng"))
            ]
            if match:
                pairs.append((lat, match[0]))
                break
    return pairs


def _haversine(lat1, lon1, lat2, lon2) -> np.ndarray:
    lat1, lon1, lat2, lon2 = (
        np.radians(np.asarray(v, dtype=float)) for v in (lat1, lon1, lat2, lon2)
    )
    a = (
        np.sin((lat2 - lat1) / 2) ** 2
        + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    )
    return 6371.0 * 2 * np.arcsin(np.sqrt(np.clip(a, 0, 1)))


def engineer(pub: Public) -> tuple[pd.DataFrame, pd.DataFrame, list[str], list[str]]:
    """Train and test feature frames with the description-guided features; numeric and
    categorical column names of the result."""
    drop = {name for name, meaning in pub.meanings.items() if LEAK.search(meaning)}
    frames = [pub.train[list(pub.features)].copy(), pub.test[list(pub.features)].copy()]
    numeric = [c for c in of_kind(pub, "numeric", "boolean") if c not in drop]
    categorical = [c for c in of_kind(pub, "categorical") if c not in drop]
    for name in list(categorical):
        both = pd.concat([frames[0][name], frames[1][name]])
        if _is_datetime(both):
            categorical.remove(name)
            origin = pd.to_datetime(both, errors="coerce").min()
            for frame in frames:
                stamp = pd.to_datetime(frame[name], errors="coerce")
                parts = {
                    "hour": stamp.dt.hour + stamp.dt.minute / 60,
                    "weekday": stamp.dt.weekday,
                    "month": stamp.dt.month,
                    "dayofyear": stamp.dt.dayofyear,
                    "days": (stamp - origin).dt.total_seconds() / 86400,
                }
                for part, values in parts.items():
                    frame[f"{name}__{part}"] = values.astype(float)
            numeric += [f"{name}__{p}" for p in ("hour", "weekday", "month", "dayofyear", "days")]
            categorical.append(f"{name}__weekday_cat")
            for frame in frames:
                frame[f"{name}__weekday_cat"] = (
                    frame[f"{name}__weekday"].astype("Int64").astype(str)
                )
            continue
        sep = _compound(both)
        if sep:
            width = int(both.dropna().astype(str).str.count(re.escape(sep)).iloc[0]) + 1
            for frame in frames:
                split = frame[name].astype(str).str.split(sep, expand=True, n=width - 1)
                for k in range(width):
                    part = split[k].where(frame[name].notna(), np.nan) if k in split else np.nan
                    frame[f"{name}__p{k}"] = part
                    as_number = pd.to_numeric(part, errors="coerce")
                    if as_number.notna().mean() > 0.9:
                        frame[f"{name}__n{k}"] = as_number.astype(float)
            for k in range(width):
                categorical.append(f"{name}__p{k}")
                if f"{name}__n{k}" in frames[0]:
                    numeric.append(f"{name}__n{k}")
    plain = [c for c in numeric if c in pub.features and pub.features[c] == "numeric"]
    for (lat1, lon1), (lat2, lon2) in _pairs(_coordinate_pairs(pub, plain)):
        for frame in frames:
            frame[f"dist__{lat1}__{lat2}"] = _haversine(
                frame[lat1], frame[lon1], frame[lat2], frame[lon2]
            )
        numeric.append(f"dist__{lat1}__{lat2}")
    by_unit: dict[str, list[str]] = {}
    for name in plain:
        unit = pub.units.get(name, "").strip()
        if unit and unit not in ("-", "%"):
            by_unit.setdefault(unit, []).append(name)
    added = 0
    for names in by_unit.values():
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                if added >= 12:
                    break
                for frame in frames:
                    frame[f"{a}__minus__{b}"] = frame[a] - frame[b]
                    frame[f"{a}__over__{b}"] = frame[a] / frame[b].where(frame[b].abs() > 1e-9)
                numeric += [f"{a}__minus__{b}", f"{a}__over__{b}"]
                added += 1
    keep = numeric + categorical
    return frames[0][keep], frames[1][keep], numeric, categorical


def _pairs(points: list[tuple[str, str]]) -> list[tuple[tuple[str, str], tuple[str, str]]]:
    return [(p, q) for i, p in enumerate(points) for q in points[i + 1 :]]


def groups_of(pub: Public) -> np.ndarray | None:
    """An entity id that repeats across training rows: validate grouped by it."""
    n = len(pub.train)
    for name in of_kind(pub, "categorical"):
        column = pub.train[name]
        levels = column.nunique()
        named = name.lower().endswith(("_id", "id")) or GROUP_WORDS.search(pub.meanings[name])
        if named and 3 <= levels <= n / 1.5 and column.notna().all():
            return column.astype(str).to_numpy()
    return None


# --- the metric, on out-of-fold predictions ---------------------------------------------------


def score(metric: str, y: np.ndarray, pred: np.ndarray) -> float:
    """Higher is better (losses negated). `pred`: values, P(positive) or class labels."""
    if metric in ("rmse", "mean_columnwise_rmse"):
        return -float(np.sqrt(np.mean((y - pred) ** 2)))
    if metric in ("rmsle", "mean_columnwise_rmsle"):
        return -float(
            np.sqrt(np.mean((np.log1p(np.maximum(pred, 0)) - np.log1p(np.maximum(y, 0))) ** 2))
        )
    if metric == "mae":
        return -mean_absolute_error(y, pred)
    if metric in ("roc_auc", "mean_columnwise_roc_auc"):
        return roc_auc_score(y, pred) if len(np.unique(y)) > 1 else 0.5
    if metric == "log_loss":
        p = np.clip(pred, 1e-15, 1 - 1e-15)
        return float(np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
    if metric == "accuracy":
        return accuracy_score(y, pred)
    if metric == "macro_f1":
        return f1_score(y, pred, average="macro")
    if metric == "quadratic_weighted_kappa":
        return cohen_kappa_score(y, pred, weights="quadratic")
    raise ValueError(metric)


def multiclass_log_likelihood(y_codes: np.ndarray, proba: np.ndarray) -> float:
    p = np.clip(proba / proba.sum(axis=1, keepdims=True), 1e-15, 1)
    return float(np.mean(np.log(p[np.arange(len(y_codes)), y_codes])))


# --- candidates --------------------------------------------------------------------------------


@dataclass
class Candidate:
    name: str
    make: Callable[[], object]
    log_target: bool = False


def regressors(
    pub: Public, numeric: list[str], categorical: list[str], wide: bool
) -> list[Candidate]:
    robust = pub.metric == "mae" or "recorded wrongly" in pub.description.lower()
    log = pub.metric.endswith("rmsle")
    linear = one_hot(numeric, categorical)
    tree = imputed_ordinal(numeric, categorical)
    native = [True] * len(categorical) + [False] * len(numeric)
    hgb = dict(HGB, loss="absolute_error") if robust else HGB
    out = [
        Candidate(f"ridge{a}", lambda a=a: make_pipeline(linear, Ridge(alpha=a)), log)
        for a in (1.0, 10.0)
    ]
    if robust:
        out.append(
            Candidate("huber", lambda: make_pipeline(linear, HuberRegressor(max_iter=500)), log)
        )
    out += [
        Candidate(
            "forest",
            lambda: make_pipeline(tree, RandomForestRegressor(min_samples_leaf=2, **TREES)),
            log,
        ),
        Candidate(
            "hgb",
            lambda: make_pipeline(
                ordinal(numeric, categorical),
                HistGradientBoostingRegressor(categorical_features=native, **hgb),
            ),
            log,
        ),
    ]
    if wide:
        extra = ExtraTreesRegressor(min_samples_leaf=2, **TREES)
        out.append(Candidate("extra", lambda: make_pipeline(tree, clone(extra)), log))
    return out


def classifiers(
    pub: Public, numeric: list[str], categorical: list[str], wide: bool
) -> list[Candidate]:
    linear = one_hot(numeric, categorical)
    tree = imputed_ordinal(numeric, categorical)
    native = [True] * len(categorical) + [False] * len(numeric)
    out = [
        Candidate(
            f"logistic{c}",
            lambda c=c: make_pipeline(linear, LogisticRegression(C=c, max_iter=3000)),
        )
        for c in (0.3, 3.0)
    ]
    out += [
        Candidate(
            "forest",
            lambda: make_pipeline(tree, RandomForestClassifier(min_samples_leaf=2, **TREES)),
        ),
        Candidate(
            "hgb",
            lambda: make_pipeline(
                ordinal(numeric, categorical),
                HistGradientBoostingClassifier(categorical_features=native, **HGB),
            ),
        ),
    ]
    if wide:
        extra = ExtraTreesClassifier(min_samples_leaf=2, **TREES)
        out.append(Candidate("extra", lambda: make_pipeline(tree, clone(extra))))
    return out


def folds(y: np.ndarray, groups: np.ndarray | None, stratify: bool) -> list:
    n = len(y)
    if groups is not None and len(np.unique(groups)) >= FOLDS:
        return list(GroupKFold(FOLDS).split(np.zeros(n), y, groups))
    if stratify and np.bincount(pd.factorize(y)[0]).min() >= FOLDS:
        return list(StratifiedKFold(FOLDS, shuffle=True, random_state=0).split(np.zeros(n), y))
    return list(KFold(FOLDS, shuffle=True, random_state=0).split(np.zeros(n)))


def out_of_fold(
    candidate: Candidate, x: pd.DataFrame, y: np.ndarray, splits: list, proba: bool, n_classes: int
) -> np.ndarray:
    oof = np.zeros((len(y), n_classes)) if proba else np.zeros(len(y))
    for train, valid in splits:
        model = candidate.make()
        if proba:
            codes = y[train]
            model.fit(x.iloc[train], codes)
            p = np.zeros((len(valid), n_classes))
            p[:, model.classes_] = model.predict_proba(x.iloc[valid])
            if len(np.unique(codes)) < n_classes:  # a class absent from the fold
                p = (p + 1e-3) / (1 + n_classes * 1e-3)
            oof[valid] = p
        else:
            target = np.log1p(np.maximum(y[train], 0)) if candidate.log_target else y[train]
            pred = model.fit(x.iloc[train], target).predict(x.iloc[valid])
            oof[valid] = np.expm1(pred) if candidate.log_target else pred
    return oof


def fit_full(
    candidate: Candidate,
    x: pd.DataFrame,
    y: np.ndarray,
    x_test: pd.DataFrame,
    proba: bool,
    n_classes: int,
) -> np.ndarray:
    model = candidate.make()
    if proba:
        model.fit(x, y)
        p = np.zeros((len(x_test), n_classes))
        p[:, model.classes_] = model.predict_proba(x_test)
        return p
    target = np.log1p(np.maximum(y, 0)) if candidate.log_target else y
    pred = model.fit(x, target).predict(x_test)
    return np.expm1(pred) if candidate.log_target else pred


# --- post-processing that fits the metric -----------------------------------------------------


def temperature(proba: np.ndarray, t: float) -> np.ndarray:
    logits = np.log(np.clip(proba, 1e-6, 1)) / t
    logits -= logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(axis=1, keepdims=True)


def classify(metric: str, proba: np.ndarray, setting: tuple) -> np.ndarray:
    """Class codes from probabilities under a tuned setting."""
    kind, value = setting
    if kind == "threshold":
        return (proba[:, 1] >= value).astype(int)
    if kind == "prior":
        return (proba / value).argmax(axis=1)
    if kind == "cuts":
        expected = proba @ np.arange(proba.shape[1])
        return np.searchsorted(np.asarray(value), expected)
    return proba.argmax(axis=1)


def tune(metric: str, y: np.ndarray, proba: np.ndarray) -> tuple[tuple, float]:
    """The post-processing setting that maximises the metric on out-of-fold probabilities."""
    k = proba.shape[1]
    if metric in ("log_loss", "multiclass_log_loss"):
        best = max(
            (multiclass_log_likelihood(y, temperature(proba, t)), t)
            for t in (0.6, 0.8, 1.0, 1.25, 1.6, 2.0, 2.5)
        )
        return ("temperature", best[1]), best[0]
    if metric in ("roc_auc", "mean_columnwise_roc_auc"):
        return ("none", None), score("roc_auc", y, proba[:, 1])
    options: list[tuple] = [("argmax", None)]
    prior = np.bincount(y, minlength=k) / len(y) + 1e-3
    if metric == "macro_f1":
        options += [("prior", prior**a) for a in (0.5, 1.0)]
        if k == 2:
            options += [("threshold", t) for t in np.linspace(0.15, 0.85, 15)]
    if metric == "quadratic_weighted_kappa":
        expected = proba @ np.arange(k)
        base = np.arange(k - 1) + 0.5
        options.append(("cuts", base))
        cuts = base.copy()
        for _ in range(2):  # coordinate search over the cut points
            for j in range(k - 1):
                grid = np.linspace(cuts[j] - 0.5, cuts[j] + 0.5, 11)
                scores = [
                    score(
                        metric,
                        y,
                        np.searchsorted(np.sort(np.r_[cuts[:j], g, cuts[j + 1 :]]), expected),
                    )
                    for g in grid
                ]
                cuts[j] = grid[int(np.argmax(scores))]
                cuts = np.sort(cuts)
        options.append(("cuts", cuts.copy()))
    scored = [(score(metric, y, classify(metric, proba, o)), i) for i, o in enumerate(options)]
    best, index = max(scored)
    return options[index], best


# --- the policy -------------------------------------------------------------------------------


def solve_target(
    pub: Public,
    target: str,
    y_raw: pd.Series,
    x: pd.DataFrame,
    x_test: pd.DataFrame,
    groups: np.ndarray | None,
    ensemble: bool,
    deadline: float,
) -> dict:
    """Submission columns of one target: CV-selected model, metric-aware post-processing."""
    metric = pub.metric
    numeric = [c for c in x.columns if pd.api.types.is_numeric_dtype(x[c])]
    categorical = [c for c in x.columns if c not in numeric]
    if pub.kind == "value":
        y = y_raw.to_numpy(dtype=float)
        splits = folds(y, groups, stratify=False)
        scored = []
        for candidate in regressors(pub, numeric, categorical, ensemble):
            if time.monotonic() > deadline and scored:
                break
            oof = out_of_fold(candidate, x, y, splits, False, 0)
            scored.append((score(metric, y, valid_values(pub, oof)), candidate, oof))
        scored.sort(key=lambda item: -item[0])
        chosen = [scored[0][1]]
        if ensemble and len(scored) >= 3:
            blend = np.mean([item[2] for item in scored[:3]], axis=0)
            if score(metric, y, valid_values(pub, blend)) > scored[0][0]:
                chosen = [item[1] for item in scored[:3]]
        pred = np.mean([fit_full(c, x, y, x_test, False, 0) for c in chosen], axis=0)
        return {target: valid_values(pub, pred)}
    labels = pub.classes[target]
    raw = y_raw.astype(str)
    known = raw.isin(labels).to_numpy()
    x, raw = x[known].reset_index(drop=True), raw[known]
    y = np.array([labels.index(v) for v in raw])
    if len(np.unique(y)) < 2:
        return columns_from(pub, target, np.ones((len(x_test), 1)), [labels[y[0]]])
    k = len(labels)
    splits = folds(y, None if groups is None else groups[known], stratify=True)
    scored = []
    for candidate in classifiers(pub, numeric, categorical, ensemble):
        if time.monotonic() > deadline and scored:
            break
        oof = out_of_fold(candidate, x, y, splits, True, k)
        setting, value = tune(metric if metric != "mean_columnwise_roc_auc" else "roc_auc", y, oof)
        scored.append((value, candidate, oof, setting))
    scored.sort(key=lambda item: -item[0])
    value, best, _, setting = scored[0]
    chosen = [best]
    if ensemble and len(scored) >= 3:
        blend = np.mean([item[2] for item in scored[:3]], axis=0)
        blend_setting, blend_value = tune(
            metric if metric != "mean_columnwise_roc_auc" else "roc_auc", y, blend
        )
        if blend_value > value:
            chosen, setting = [item[1] for item in scored[:3]], blend_setting
    proba = np.mean([fit_full(c, x, y, x_test, True, k) for c in chosen], axis=0)
    if setting[0] == "temperature":
        proba = temperature(proba, setting[1])
    if pub.kind == "label":
        codes = classify(metric, proba, setting)
        return {target: [labels[c] for c in codes]}
    return columns_from(pub, target, proba, labels)


def run(ensemble: bool = False, budget_s: float = 120.0) -> None:
    """Write submission.csv; model search stops (keeping what it has) past `budget_s`."""
    deadline = time.monotonic() + budget_s
    pub = load()
    x, x_test, _, _ = engineer(pub)
    groups = groups_of(pub)
    columns: dict = {}
    for done, target in enumerate(pub.targets):
        usable = pub.train[target].notna().to_numpy()
        share = (deadline - time.monotonic()) / (len(pub.targets) - done)
        columns.update(
            solve_target(
                pub,
                target,
                pub.train[target][usable].reset_index(drop=True),
                x[usable].reset_index(drop=True),
                x_test,
                None if groups is None else groups[usable],
                ensemble,
                time.monotonic() + share,
            )
        )
    write(pub, columns)
