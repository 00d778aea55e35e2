"""Execute a recipe into train, test, hidden answers and submissions.

Determinism: every random draw comes from child generators of the recipe's RNG seed, one per
purpose, so changing how one part draws does not shift the others.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from sandforge.agents.recipe import (
    Constraint,
    DerivedQuantity,
    FeatureColumn,
    Recipe,
    TargetColumn,
)
from sandforge.synthesis.data import TaskData
from sandforge.synthesis.quirks import QuirkTable, match_shares
from sandforge.synthesis.rules import latent
from sandforge.validators.metrics import SubmissionKind, TaskType

_Z95 = 3.92  # width of the central 95% of a standard normal, in sd


def _generators(seed: int) -> dict[str, np.random.Generator]:
    purposes = ("features", "rule", "targets", "noise", "ids")
    children = np.random.SeedSequence(seed).spawn(len(purposes))
    return {p: np.random.default_rng(s) for p, s in zip(purposes, children, strict=True)}


class _Features:
    """Raw column values plus the standardized view the hidden rule reads.

    Columns are drawn jointly: free columns first, then each declared constraint rebuilds its
    column from its bound (a share of it, a gap below it, a cap, or a fixed value under a
    condition), so every row obeys the domain's facts. Derived quantities are computed from
    the raw values the table holds, so an agent can recompute them.
    """

    def __init__(self, recipe: Recipe, rng: np.random.Generator, n: int, n_train: int):
        self.values: dict[str, np.ndarray] = {}
        self.standard: dict[str, np.ndarray] = {}
        self.z: dict[str, np.ndarray] = {}
        shift = np.zeros(n)
        shift[n_train:] = recipe.noise.shift
        numeric = [f for f in recipe.features if f.kind in ("numeric", "integer")]
        for feature in [f for f in numeric if f.role != "correlated"]:
            z = rng.standard_normal(n)
            if feature.name == recipe.noise.shift_feature:
                z = z + shift
            self._numeric(feature, z)
        for feature in [f for f in numeric if f.role == "correlated"]:
            rho = rng.uniform(0.75, 0.95)
            source = self.z[feature.correlated_with or ""]
            self._numeric(feature, rho * source + np.sqrt(1 - rho**2) * rng.standard_normal(n))
        for feature in recipe.features:
            if feature.kind == "categorical":
                levels = len(feature.categories or [])
                codes = rng.choice(levels, size=n, p=rng.dirichlet(np.full(levels, 3.0)))
                effects = rng.standard_normal(levels)
                self.values[feature.name] = codes
                self.standard[feature.name] = effects[codes]
            elif feature.kind == "boolean":
                flags = rng.random(n) < rng.uniform(0.25, 0.75)
                self.values[feature.name] = flags
                self.standard[feature.name] = flags.astype(float)
        by_name = {f.name: f for f in recipe.features}
        constrained = {c.column for c in recipe.constraints}
        for d in recipe.derived:
            if d.linked and d.of[0] not in constrained:
                self._link(d, by_name)
        for constraint in recipe.constraints:
            self._constrain(constraint, by_name)
        for d in recipe.derived:
            if d.role == "signal":
                self.standard[d.name] = _robust(_derive(d, self.values))
        for name, column in self.standard.items():
            self.standard[name] = _standardize(column)

    def _numeric(self, feature: FeatureColumn, z: np.ndarray) -> None:
        low, high = float(feature.low), float(feature.high)  # type: ignore[arg-type]
        self.z[feature.name] = z
        self._store(feature, (low + high) / 2 + z * (high - low) / _Z95)
        self.standard[feature.name] = z

    def _store(self, feature: FeatureColumn, values: np.ndarray, down: bool = False) -> None:
        """Round (down, when the value must stay under a bound) and keep within hard limits."""
        floor = feature.minimum
        if floor is None and float(feature.low) >= 0:  # type: ignore[arg-type]
            floor = 0.0  # counts, durations and amounts stay physical
        scale = 10.0 ** (0 if feature.kind == "integer" else feature.decimals)
        values = np.floor(values * scale) / scale if down else np.round(values * scale) / scale
        low = None if floor is None else np.ceil(floor * scale) / scale  # bounds, rounded inward
        high = None if feature.maximum is None else np.floor(feature.maximum * scale) / scale
        self.values[feature.name] = np.clip(values, low, high)

    def _link(self, d: DerivedQuantity, features: dict[str, FeatureColumn]) -> None:
        """Rebuild the first part from the second and its own draw: a = b x r or a = b + g,
        with r (or g) centred where the two typical ranges put it."""
        (a, b), z = d.of, self.z[d.of[0]]
        fa, fb = features[a], features[b]
        mid_a, mid_b = ((float(f.low) + float(f.high)) / 2 for f in (fa, fb))  # type: ignore[arg-type]
        if d.op == "ratio":
            if float(fb.low) <= 0 or float(fa.low) < 0:  # type: ignore[arg-type]
                return  # a ratio over a signed or zero-crossing range has no natural centre
            values = self.values[b] * (mid_a / mid_b) * np.exp(0.35 * z)
        else:
            width = float(fa.high) - float(fa.low)  # type: ignore[arg-type]
            values = self.values[b] + (mid_a - mid_b) + 0.5 * width / _Z95 * z
        self._store(fa, values)
        self.standard[a] = self.values[a].astype(float)

    def _constrain(self, c: Constraint, features: dict[str, FeatureColumn]) -> None:
        feature = features[c.column]
        if c.kind == "equals_when":
            when = features[c.when or ""]
            hit = self.values[when.name] == (
                (when.categories or []).index(c.when_value)
                if when.kind == "categorical"
                else bool(c.when_value)
            )
            values = np.where(hit, c.value, self.values[c.column])
            self.values[c.column] = values
        else:
            bound, z = self.values[c.bound or ""], self.z[c.column]
            low, high = float(feature.low), float(feature.high)  # type: ignore[arg-type]
            other = features[c.bound or ""]
            bound_mid = (float(other.low) + float(other.high)) / 2  # type: ignore[arg-type]
            if c.mode == "share":
                share = np.clip((low + high) / 2 / bound_mid, 0.05, 0.95)
                values = bound / (1.0 + np.exp(-(np.log(share / (1 - share)) + z)))
            elif c.mode == "gap":
                gap = max(bound_mid - (low + high) / 2, 0.1 * (high - low))
                values = bound - gap * np.exp(0.4 * z)
            else:
                values = np.minimum(self.values[c.column], bound)
            self._store(feature, np.minimum(values, bound), down=True)
            self.values[c.column] = np.minimum(self.values[c.column], bound)
        self.standard[c.column] = self.values[c.column].astype(float)


def _standardize(column: np.ndarray) -> np.ndarray:
    return (column - column.mean()) / max(float(column.std()), 1e-12)


def _robust(column: np.ndarray) -> np.ndarray:
    """Centred on the median, scaled by the MAD and capped at 3: a ratio over a small
    denominator must not turn the whole column into one outlier and a constant."""
    median = np.median(column)
    mad = 1.4826 * np.median(np.abs(column - median))
    return np.clip((column - median) / (mad if mad > 1e-12 else 1.0), -3.0, 3.0)


def _derive(d: DerivedQuantity, values: dict[str, np.ndarray]) -> np.ndarray:
    a, b = (values[name].astype(float) for name in d.of)
    if d.op == "difference":
        return a - b
    if d.op == "product":
        return a * b
    positive = np.abs(b[b != 0])
    tiny = positive.min() / 2 if positive.size else 1.0
    return a / np.where(np.abs(b) < tiny, tiny, b)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _intercept_for_rate(scores: np.ndarray, rate: float) -> float:
    """The bias b with mean(sigmoid(scores + b)) == rate, by bisection."""
    lo, hi = -30.0, 30.0
    for _ in range(80):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _sigmoid(scores + mid).mean() < rate else (lo, mid)
    return (lo + hi) / 2


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _class_priors(k: int, minority_rate: float | None, rng: np.random.Generator) -> np.ndarray:
    if minority_rate is None:
        priors = rng.dirichlet(np.full(k, 8.0))
    else:  # geometric decay down to a rare class
        priors = minority_rate ** (np.arange(k) / (k - 1))
        priors = rng.permutation(priors)
    return priors / priors.sum()


class _Outcome:
    """True target values (noisy, as observed) and the oracle's noise-free prediction."""

    def __init__(self, observed: np.ndarray, oracle: np.ndarray):
        self.observed = observed
        self.oracle = oracle  # probability, class-probability matrix, label index or value
        self.truth = observed  # binary: the label before flips, and its noise-free probability
        self.clean = oracle


def _binary(
    f: np.ndarray, recipe: Recipe, rng: np.random.Generator, feed: _Outcome | None = None
) -> _Outcome:
    """`feed`: the previous label of a chain, whose true value shifts this label's odds; the
    oracle then averages over it, since nobody sees it at test time."""
    logits = recipe.rule.signal_strength * f
    rate = recipe.noise.minority_rate or rng.uniform(0.35, 0.65)
    base = logits + _intercept_for_rate(logits, rate)
    p = _sigmoid(base)
    if feed is not None:
        lift = rng.uniform(1.5, 3.0) * rng.choice([-1.0, 1.0])
        p = feed.clean * _sigmoid(base + lift) + (1 - feed.clean) * p
        base = base + lift * feed.truth
    y = (rng.random(len(f)) < _sigmoid(base)).astype(np.int64)
    eta = recipe.flip_rate
    flips = rng.random(len(f)) < eta
    outcome = _Outcome(np.where(flips, 1 - y, y), p * (1 - 2 * eta) + eta)
    outcome.truth, outcome.clean = y, p
    return outcome


def _categorical(x: _Signal, target: TargetColumn, recipe: Recipe, rngs, quirks) -> _Outcome:
    k = len(target.classes or [])
    f = np.column_stack([quirks.mix(x.latent(recipe, rngs["rule"])) for _ in range(k)])
    priors = _class_priors(k, recipe.noise.minority_rate, rngs["targets"])
    logits = recipe.rule.signal_strength * f + np.log(priors)
    if recipe.noise.minority_rate is not None:  # the rare class stays rare
        logits = match_shares(logits, priors)
    p = _softmax(logits)
    u = rngs["targets"].random(len(f))[:, None]
    y = (u > np.cumsum(p, axis=1)).sum(axis=1).clip(0, k - 1)
    eta = recipe.flip_rate
    noisy = rngs["noise"].random(len(f)) < eta
    y = np.where(noisy, rngs["noise"].integers(0, k, size=len(f)), y)
    return _Outcome(y, (1 - eta) * p + eta / k)


def _ordinal(f: np.ndarray, target: TargetColumn, recipe: Recipe, rngs) -> _Outcome:
    k = len(target.classes or [])
    scale = 1.0 / recipe.rule.signal_strength
    noisy = f + rngs["targets"].logistic(0.0, scale, size=len(f))
    priors = _class_priors(k, recipe.noise.minority_rate, rngs["targets"])
    cuts = np.quantile(noisy, np.cumsum(priors)[:-1])
    return _Outcome(np.searchsorted(cuts, noisy), np.searchsorted(cuts, f))


def _continuous(f: np.ndarray, target: TargetColumn, recipe: Recipe, rngs) -> _Outcome:
    clean = target.center + target.scale * f
    y = clean + target.scale * recipe.noise.target_noise * rngs["targets"].standard_normal(len(f))
    if target.nonnegative:
        clean, y = np.maximum(clean, 0.0), np.maximum(y, 0.0)
    return _Outcome(y, clean)


def _outcome(
    x: _Signal, target: TargetColumn, recipe: Recipe, rngs, quirks: QuirkTable
) -> _Outcome:
    if target.kind == "categorical":
        return _categorical(x, target, recipe, rngs, quirks)
    f = quirks.mix(x.latent(recipe, rngs["rule"]))
    if target.kind == "binary":
        return _binary(f, recipe, rngs["targets"])
    if target.kind == "ordinal":
        return _ordinal(f, target, recipe, rngs)
    return _continuous(f, target, recipe, rngs)


def _multilabel(x: _Signal, recipe: Recipe, rngs, quirks: QuirkTable) -> list[_Outcome]:
    """Labels that share a latent (weight `label_coupling`) and, in a chain, feed the next."""
    w = recipe.rule.label_coupling
    shared = x.latent(recipe, rngs["rule"]) if w > 0 else 0.0
    outcomes: list[_Outcome] = []
    for _ in recipe.targets:
        own = x.latent(recipe, rngs["rule"])
        f = quirks.mix(_standardize(np.sqrt(1 - w) * own + np.sqrt(w) * shared))
        feed = outcomes[-1] if recipe.rule.label_chain and outcomes else None
        outcomes.append(_binary(f, recipe, rngs["targets"], feed))
    return outcomes


class _Signal:
    """What the hidden rule reads: the standardized signal columns and derived quantities,
    plus (slope column, category codes, levels) for each varying slope."""

    def __init__(self, recipe: Recipe, features: _Features):
        names = [f.name for f in recipe.features if f.role == "signal"]
        names += [d.name for d in recipe.derived if d.role == "signal"]
        self.x = np.column_stack([features.standard[name] for name in names])
        categories = {f.name: len(f.categories or []) for f in recipe.features}
        self.slopes = [
            (features.standard[a], features.values[b], categories[b])
            for a, b in recipe.rule.varying_slopes
        ]

    def latent(self, recipe: Recipe, rng: np.random.Generator) -> np.ndarray:
        return latent(recipe.rule.family, self.x, rng, self.slopes)


def _add_target_outliers(y: np.ndarray, target: TargetColumn, rate: float, n_train: int, rng):
    """Corrupt a few training targets only: the test answers stay clean."""
    hit = np.flatnonzero(rng.random(n_train) < rate)
    bumps = target.scale * rng.uniform(4.0, 8.0, size=len(hit))
    if not target.nonnegative:
        bumps = bumps * rng.choice([-1.0, 1.0], size=len(hit))
    y = y.copy()
    y[hit] = y[hit] + bumps
    return y


def _ids(recipe: Recipe, n: int, rng: np.random.Generator) -> list[str]:
    prefix = "".join(part[0] for part in recipe.id_column.split("_")).upper()[:3] or "ID"
    numbers = rng.choice(900_000, size=n, replace=False) + 100_000
    return [f"{prefix}{number}" for number in numbers]


def _feature_series(feature: FeatureColumn, values: np.ndarray, missing: np.ndarray) -> pl.Series:
    if feature.kind == "categorical":
        labels = np.asarray(feature.categories, dtype=object)[values]
        data = [None if m else str(v) for v, m in zip(labels, missing, strict=True)]
        return pl.Series(feature.name, data, dtype=pl.String)
    if feature.kind == "boolean":
        data = [None if m else bool(v) for v, m in zip(values, missing, strict=True)]
        return pl.Series(feature.name, data, dtype=pl.Boolean)
    if feature.kind == "integer":
        data = [None if m else int(v) for v, m in zip(values, missing, strict=True)]
        return pl.Series(feature.name, data, dtype=pl.Int64)
    data = [None if m else float(v) for v, m in zip(values, missing, strict=True)]
    return pl.Series(feature.name, data, dtype=pl.Float64)


def _target_series(recipe: Recipe, target: TargetColumn, y: np.ndarray) -> pl.Series:
    if target.kind == "binary":
        return pl.Series(target.name, y.astype(np.int64), dtype=pl.Int64)
    if target.kind in ("categorical", "ordinal"):
        return pl.Series(target.name, np.asarray(recipe.class_labels(target))[y], dtype=pl.String)
    return pl.Series(target.name, np.round(y, target.decimals), dtype=pl.Float64)


def _oracle_columns(recipe: Recipe, outcomes: list[_Outcome]) -> list[pl.Series]:
    kind = recipe.submission_kind
    if kind == SubmissionKind.CLASS_PROBABILITIES:
        (target,), (outcome,) = recipe.targets, outcomes
        labels = recipe.class_labels(target)
        return [pl.Series(c, outcome.oracle[:, i]) for i, c in enumerate(labels)]
    columns = []
    for target, outcome in zip(recipe.targets, outcomes, strict=True):
        oracle = outcome.oracle
        if kind == SubmissionKind.LABEL:
            if target.kind == "binary":
                oracle = (oracle > 0.5).astype(np.int64)
            elif target.kind == "categorical":
                oracle = oracle.argmax(axis=1)
            columns.append(_target_series(recipe, target, oracle).alias(target.name))
        else:  # probability or value
            columns.append(pl.Series(target.name, oracle.astype(float)))
    return columns


def _sample_columns(recipe: Recipe, n: int) -> list[pl.Series]:
    """Kaggle-style placeholder: one constant, uninformative value per column."""
    kind = recipe.submission_kind
    if kind == SubmissionKind.CLASS_PROBABILITIES:
        labels = recipe.class_labels(recipe.targets[0])
        return [pl.Series(c, [round(1 / len(labels), 6)] * n) for c in labels]
    if kind == SubmissionKind.LABEL:
        return [
            pl.Series(t.name, [recipe.class_labels(t)[0]] * n).cast(
                pl.Int64 if t.kind == "binary" else pl.String
            )
            for t in recipe.targets
        ]
    constant = 0.5 if kind == SubmissionKind.PROBABILITY else 0.0
    return [pl.Series(t.name, [constant] * n) for t in recipe.targets]


def synthesize(recipe: Recipe) -> TaskData:
    """Build every table of a task from its recipe; same recipe, same bytes."""
    rngs = _generators(recipe.rng_seed)
    n_train, n = recipe.n_train, recipe.n_train + recipe.n_test
    features = _Features(recipe, rngs["features"], n, n_train)
    signal = _Signal(recipe, features)
    quirks = QuirkTable(recipe, n, n_train)
    if recipe.task_type == TaskType.MULTILABEL:
        outcomes = _multilabel(signal, recipe, rngs, quirks)
    else:
        outcomes = [_outcome(signal, t, recipe, rngs, quirks) for t in recipe.targets]
    if recipe.outlier_share > 0:
        for target, outcome in zip(recipe.targets, outcomes, strict=True):
            outcome.observed = _add_target_outliers(
                outcome.observed, target, recipe.outlier_share, n_train, rngs["noise"]
            )
    ids = pl.Series(recipe.id_column, _ids(recipe, n, rngs["ids"]), dtype=pl.String)
    columns = [ids]
    for feature in recipe.features:
        missing = rngs["noise"].random(n) < feature.missing_rate
        columns.append(_feature_series(feature, features.values[feature.name], missing))
    columns += quirks.columns([o.observed for o in outcomes])
    table = pl.DataFrame(columns)
    targets = pl.DataFrame(
        [
            _target_series(recipe, t, o.observed)
            for t, o in zip(recipe.targets, outcomes, strict=True)
        ]
    )
    full = pl.concat([table, targets], how="horizontal")
    train, rest = full.head(n_train), full.tail(n - n_train)
    target_names = [t.name for t in recipe.targets]
    test_ids = rest.select(recipe.id_column)
    oracle = pl.concat(
        [test_ids, pl.DataFrame(_oracle_columns(recipe, outcomes)).tail(n - n_train)],
        how="horizontal",
    )
    sample = pl.concat(
        [test_ids, pl.DataFrame(_sample_columns(recipe, n - n_train))], how="horizontal"
    )
    return TaskData(
        train=train,
        test=rest.drop(target_names),
        answers=rest.select([recipe.id_column, *target_names]),
        sample_submission=sample,
        oracle_submission=oracle,
    )
