"""The recipe: everything synthesis needs to build a task's data, and nothing more.

Every provider (offline or LLM) produces this one type; synthesis executes it. It lives with
its producers, the agents, so that synthesis imports the agents' layer, never the reverse.
The recipe holds the hidden generative rule, so it is stored in the bundle manifest, never
under `prepared/public/`.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sandforge.seeds.card import SLUG_PATTERN
from sandforge.validators.metrics import (
    GENERATABLE_TASK_TYPES,
    SubmissionKind,
    TaskType,
    metric_info,
)

RuleFamily = Literal["linear", "interactions", "thresholds", "periodic", "sparse"]
RULE_FAMILIES: tuple[RuleFamily, ...] = (
    "linear",
    "interactions",
    "thresholds",
    "periodic",
    "sparse",
)
IDENTIFIER = r"^[a-z][a-z0-9_]*$"
# The target kind each task type takes (what the LLM schemas offer, what validation checks)
TARGET_KIND = {
    TaskType.BINARY: "binary",
    TaskType.MULTILABEL: "binary",
    TaskType.MULTICLASS: "categorical",
    TaskType.ORDINAL: "ordinal",
    TaskType.REGRESSION: "continuous",
    TaskType.MULTI_TARGET_REGRESSION: "continuous",
}
Difficulty = Literal["easy", "medium", "hard"]
DIFFICULTIES: tuple[Difficulty, ...] = ("easy", "medium", "hard")


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FeatureColumn(_Frozen):
    """One input column. `role` decides whether the hidden rule reads it."""

    name: str = Field(pattern=IDENTIFIER)
    kind: Literal["numeric", "integer", "categorical", "boolean"]
    description: str
    unit: str = ""
    role: Literal["signal", "distractor", "correlated"]
    low: float | None = None  # numeric/integer: typical range (about 2.5th..97.5th pct)
    high: float | None = None
    decimals: int = Field(default=2, ge=0, le=6)
    categories: list[str] | None = None
    correlated_with: str | None = None
    missing_rate: float = Field(default=0.0, ge=0.0, le=0.5)
    minimum: float | None = None  # numeric/integer: hard physical bounds no value crosses
    maximum: float | None = None

    @model_validator(mode="after")
    def _shape(self) -> FeatureColumn:
        numeric = self.kind in ("numeric", "integer")
        if numeric and (self.low is None or self.high is None or not self.low < self.high):
            raise ValueError(f"feature {self.name}: numeric needs low < high")
        floor = self.minimum if self.minimum is not None else -math.inf
        ceiling = self.maximum if self.maximum is not None else math.inf
        if numeric and not floor <= self.low <= self.high <= ceiling:  # type: ignore[operator]
            raise ValueError(f"feature {self.name}: needs minimum <= low < high <= maximum")
        if self.kind == "categorical" and (
            not self.categories
            or len(set(self.categories)) != len(self.categories)
            or len(self.categories) < 2
        ):
            raise ValueError(f"feature {self.name}: categorical needs >= 2 distinct categories")
        if (self.role == "correlated") != (self.correlated_with is not None):
            raise ValueError(f"feature {self.name}: correlated role needs correlated_with")
        return self


class TargetColumn(_Frozen):
    name: str = Field(pattern=IDENTIFIER)
    description: str
    kind: Literal["binary", "categorical", "ordinal", "continuous"]
    classes: list[str] | None = None  # categorical/ordinal labels, ordinal in order
    unit: str = ""
    center: float = 0.0  # continuous: typical value
    scale: float = 1.0  # continuous: typical spread
    decimals: int = Field(default=3, ge=0, le=6)
    nonnegative: bool = False


class Constraint(_Frozen):
    """A fact of the domain every row obeys; synthesis builds the columns so that it holds.

    `at_most`: `column <= bound`, where `mode` says how `column` is made from `bound`:
    `share` (bound x a share in 0..1: booked seats of a capacity), `gap` (bound minus a
    positive gap: a day's minimum below its maximum) or `clip` (drawn alone, capped at bound).
    `equals_when`: `column == value` in the rows where `when` equals `when_value`.
    """

    kind: Literal["at_most", "equals_when"]
    column: str = Field(pattern=IDENTIFIER)
    bound: str | None = Field(default=None, pattern=IDENTIFIER)
    mode: Literal["share", "gap", "clip"] = "clip"
    when: str | None = Field(default=None, pattern=IDENTIFIER)
    when_value: bool | str = True
    value: float = 0.0

    @model_validator(mode="after")
    def _shape(self) -> Constraint:
        if (self.kind == "at_most") != (self.bound is not None):
            raise ValueError(f"constraint on {self.column}: at_most (and only it) needs bound")
        if (self.kind == "equals_when") != (self.when is not None):
            raise ValueError(f"constraint on {self.column}: equals_when (and only it) needs when")
        return self

    @property
    def columns(self) -> list[str]:
        return [self.column, *(c for c in (self.bound, self.when) if c)]


class DerivedQuantity(_Frozen):
    """A quantity computed from two raw columns (a ratio, difference or product). The table
    holds only the raw columns; `role` says whether the hidden rule reads the quantity.

    `linked`: the first column is built from the second and the quantity's own draw (a
    tonnage from the wagon count and a load per wagon), so the parts co-vary as they do in
    the domain, and the quantity is what varies on its own.
    """

    name: str = Field(pattern=IDENTIFIER)
    op: Literal["ratio", "difference", "product"]
    of: tuple[str, str]
    description: str = ""
    linked: bool = False
    role: Literal["signal", "distractor"] = "distractor"

    @model_validator(mode="after")
    def _linkable(self) -> DerivedQuantity:
        if self.linked and self.op == "product":
            raise ValueError(f"derived {self.name}: only ratios and differences can be linked")
        return self


class RuleSpec(_Frozen):
    """Hidden generative rule. Its coefficients are drawn from the recipe's RNG seed."""

    family: RuleFamily
    signal_strength: float = Field(gt=0.0, le=10.0)
    # (numeric feature, categorical feature): the numeric's slope differs by category level
    varying_slopes: list[tuple[str, str]] = []
    # multilabel: weight of a latent all labels share, and whether each label feeds the next
    label_coupling: float = Field(default=0.0, ge=0.0, le=0.9)
    label_chain: bool = False


class NoiseSpec(_Frozen):
    label_noise: float = Field(default=0.0, ge=0.0, le=0.3)  # classification flip rate
    target_noise: float = Field(default=0.0, ge=0.0, le=2.0)  # regression, in latent sd
    outlier_rate: float = Field(default=0.0, ge=0.0, le=0.1)  # corrupted training targets
    minority_rate: float | None = Field(default=None, gt=0.0, lt=0.5)  # class imbalance
    shift: float = Field(default=0.0, ge=0.0, le=2.0)  # test covariate shift, in sd
    shift_feature: str | None = None


QuirkKind = Literal[
    "time_column",
    "geo_features",
    "high_cardinality",
    "leakage_trap",
    "class_imbalance",
    "heavy_tails",
]
# The craft a careful agent applies to each quirk (catalog values of the `crafts` column:
# `list_contains(crafts, 'geo_distance')`); validators/baselines/crafted.py implements them.
CRAFT_NAMES: dict[str, str] = {
    "time_column": "time_parts",
    "geo_features": "geo_distance",
    "high_cardinality": "code_split",
    "leakage_trap": "drop_leak",
    "class_imbalance": "class_weights",
    "heavy_tails": "log_transform",
}


class QuirkColumn(_Frozen):
    """A column a quirk mechanism renders (after the features), as the description shows it."""

    name: str = Field(pattern=IDENTIFIER)
    kind: Literal["datetime", "latitude", "longitude", "code", "numeric"]
    description: str
    unit: str = ""


class QuirkSpec(_Frozen):
    """A seed's craft kept in the task (synthesis/quirks.py renders it). `strength` weighs its
    derived quantity against the rule's latent (1: as much as all features together);
    `rate` is class_imbalance's rarest-class prior."""

    quirk: QuirkKind
    columns: list[QuirkColumn] = []
    strength: float = Field(default=1.0, gt=0.0, le=3.0)
    rate: float | None = Field(default=None, gt=0.0, lt=0.5)


class Recipe(_Frozen):
    schema_version: Literal[1] = 1
    task_id: str = Field(pattern=SLUG_PATTERN, max_length=80)
    seed_id: str
    domain: str
    title: str
    entity: str  # what one row is, e.g. "household"
    modality: Literal["tabular"] = "tabular"
    task_type: TaskType
    metric: str
    id_column: str = Field(pattern=IDENTIFIER)
    features: list[FeatureColumn] = Field(min_length=2)
    targets: list[TargetColumn] = Field(min_length=1)
    rule: RuleSpec
    noise: NoiseSpec
    n_train: int = Field(ge=50, le=200)
    n_test: int = Field(ge=50, le=5000)  # rows are cheap; tiers need them
    rng_seed: int = Field(ge=0)
    constraints: list[Constraint] = []  # domain facts the data obeys, checked by GX
    derived: list[DerivedQuantity] = []  # declared over this table's columns; some read
    difficulty: Difficulty = "medium"
    quirks: list[QuirkSpec] = []

    @model_validator(mode="after")
    def _consistent(self) -> Recipe:
        info = metric_info(self.metric)
        if self.task_type not in GENERATABLE_TASK_TYPES or self.task_type not in info.task_types:
            raise ValueError(f"metric {self.metric!r} does not fit {self.task_type.value!r}")
        names = [self.id_column, *(f.name for f in self.features), *(t.name for t in self.targets)]
        names += [c.name for c in self.quirk_columns()]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate column names in {names}")
        features = {f.name: f for f in self.features}
        for f in self.features:
            source = features.get(f.correlated_with or "")
            if f.correlated_with and (source is None or source.kind not in ("numeric", "integer")):
                raise ValueError(f"{f.name}: correlated_with must name a numeric feature")
        read = any(d.role == "signal" for d in self.derived)
        if not any(f.role == "signal" for f in self.features) and not read:
            raise ValueError("at least one feature must carry signal")
        self._check_structure(features)
        if self.noise.shift_feature and self.noise.shift_feature not in features:
            raise ValueError(f"shift_feature {self.noise.shift_feature!r} is not a feature")
        expected = TARGET_KIND[self.task_type]
        for t in self.targets:
            if t.kind != expected:
                raise ValueError(f"target {t.name}: {self.task_type.value} needs {expected}")
            if t.kind in ("categorical", "ordinal") and (not t.classes or len(t.classes) < 3):
                raise ValueError(f"target {t.name}: needs >= 3 classes")
        negative = [t.name for t in self.targets if not t.nonnegative]
        if "rmsle" in self.metric and negative:
            raise ValueError(f"{self.metric} needs nonnegative targets; {negative} can be negative")
        multi = self.task_type in (TaskType.MULTILABEL, TaskType.MULTI_TARGET_REGRESSION)
        if multi != (len(self.targets) > 1):
            raise ValueError(
                f"{self.task_type.value} takes {'several' if multi else 'one'} target(s)"
            )
        return self

    def _check_structure(self, features: dict[str, FeatureColumn]) -> None:
        """Constraints, derived quantities and varying slopes name columns of fitting kinds."""
        numeric = {n for n, f in features.items() if f.kind in ("numeric", "integer")}
        for c in self.constraints:
            if c.column not in numeric or (c.bound and c.bound not in numeric):
                raise ValueError(f"constraint on {c.column}: needs numeric feature columns")
            when = features.get(c.when or "")
            if c.when and (when is None or when.kind not in ("boolean", "categorical")):
                raise ValueError(f"constraint on {c.column}: when must name a flag or category")
            if when and when.kind == "categorical" and c.when_value not in (when.categories or []):
                raise ValueError(f"constraint on {c.column}: {c.when_value!r} is not a category")
        for d in self.derived:
            if not set(d.of) <= numeric or d.of[0] == d.of[1]:
                raise ValueError(f"derived {d.name}: needs two distinct numeric features")
            if d.linked and features[d.of[0]].role == "correlated":
                raise ValueError(f"derived {d.name}: a correlated copy cannot be linked")
        for slope, group in self.rule.varying_slopes:
            if (
                slope not in numeric
                or group not in features
                or features[group].kind != "categorical"
            ):
                raise ValueError(f"varying slope ({slope}, {group}): numeric x categorical")
        coupled = self.rule.label_coupling > 0 or self.rule.label_chain
        if coupled and self.task_type != TaskType.MULTILABEL:
            raise ValueError("label coupling and chains are for multilabel tasks")

    @property
    def flip_rate(self) -> float:
        """Share of labels (train and test) synthesis replaces at random."""
        flips = (TaskType.BINARY, TaskType.MULTICLASS, TaskType.MULTILABEL)
        return self.noise.label_noise if self.task_type in flips else 0.0

    @property
    def outlier_share(self) -> float:
        """Share of training targets synthesis corrupts (regression only; test stays clean)."""
        regression = (TaskType.REGRESSION, TaskType.MULTI_TARGET_REGRESSION)
        return self.noise.outlier_rate if self.task_type in regression else 0.0

    def quirk_columns(self) -> list[QuirkColumn]:
        """Columns the quirks add to train and test, in table order (after the features)."""
        return [c for q in self.quirks for c in q.columns]

    def quirk_feature_kinds(self) -> dict[str, str]:
        """Quirk columns as a default pipeline reads them (task.json's feature kinds):
        coordinates and amounts as numbers, codes as categories. Timestamps (text) and the
        leakage trap's column are left to the craft checks, so the ladder stays honest."""
        kinds = {"latitude": "numeric", "longitude": "numeric", "numeric": "numeric"}
        kinds |= {"code": "categorical"}
        return {
            c.name: kinds[c.kind]
            for q in self.quirks
            if q.quirk != "leakage_trap"
            for c in q.columns
            if c.kind in kinds
        }

    @property
    def distinct_key(self) -> tuple[str, str, str]:
        """No two tasks of a batch share domain, targets and rule family."""
        return (self.domain, "+".join(t.name for t in self.targets), self.rule.family)

    @property
    def submission_kind(self) -> SubmissionKind:
        kind = metric_info(self.metric).submission
        assert kind is not None  # generatable metrics are implemented
        return kind

    def class_labels(self, target: TargetColumn) -> list[str]:
        """Labels as written in the data: binary targets are 0/1."""
        return ["0", "1"] if target.kind == "binary" else list(target.classes or [])

    def submission_columns(self) -> list[str]:
        """Columns of a valid submission, id first, in order."""
        if self.submission_kind == SubmissionKind.CLASS_PROBABILITIES:
            (target,) = self.targets
            return [self.id_column, *self.class_labels(target)]
        return [self.id_column, *(t.name for t in self.targets)]
