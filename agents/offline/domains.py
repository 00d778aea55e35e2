"""Application domains the offline agent re-narrates seed competitions into.

A domain is a YAML file `agents/offline/domains/<name>.yaml`: a vocabulary of realistic feature
and target columns for one setting (urban beekeeping, freight rail, ...). The offline agent
dresses a seed's structure in one of these stories, so generated tasks do not all look like
their seed. Every file is validated fully when loaded; a bad file raises `DomainError` naming
the file and the field, because a silently skipped domain would just shrink task variety.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sandforge.agents.recipe import (
    IDENTIFIER,
    Constraint,
    DerivedQuantity,
    FeatureColumn,
    TargetColumn,
)
from sandforge.seeds.yaml_files import parse_model, read_text
from sandforge.validators.metrics import TaskType

DOMAINS_DIR = Path(__file__).parent / "domains"
RESERVED_NAMES = frozenset({"id"})  # the id column of every task

Identifier = Annotated[str, Field(pattern=IDENTIFIER, max_length=40)]
Sentence = Annotated[str, Field(min_length=8, max_length=200)]
Phrase = Annotated[str, Field(pattern=r"^[a-z][a-z0-9 -]*$", max_length=40)]
FeatureRole = Literal["signal", "distractor", "correlated"]


class DomainError(ValueError):
    """A domain file that cannot be used; the message names file, field and problem."""


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _unique(values: list[str], field: str) -> None:
    duplicates = sorted({v for v in values if values.count(v) > 1})
    if duplicates:
        raise ValueError(f"{field}: duplicates {duplicates}")


class DomainFeature(_Frozen):
    """One candidate input column; `column()` turns it into a recipe FeatureColumn."""

    name: Identifier
    kind: Literal["numeric", "integer", "categorical", "boolean"]
    description: Sentence
    unit: str = ""
    low: float | None = None  # numeric/integer: typical range (about 2.5th..97.5th pct)
    high: float | None = None
    decimals: int = Field(default=2, ge=0, le=6)
    categories: list[Identifier] | None = None
    minimum: float | None = None  # hard physical bounds (a percentage: 0 and 100 by default)
    maximum: float | None = None

    @model_validator(mode="after")
    def _shape(self) -> DomainFeature:
        if self.kind in ("numeric", "integer"):
            if self.low is None or self.high is None:
                raise ValueError(f"low: {self.kind} features need low and high")
            if not self.low < self.high:
                raise ValueError(f"high: must exceed low ({self.low} >= {self.high})")
            low, high = self.bounds
            if (low is not None and self.low < low) or (high is not None and self.high > high):
                raise ValueError(f"low: typical range {self.low}..{self.high} leaves its bounds")
        elif self.minimum is not None or self.maximum is not None:
            raise ValueError(f"minimum: {self.kind} features take no bounds")
            if self.kind == "integer" and not (self.low.is_integer() and self.high.is_integer()):
                raise ValueError("low: integer features need whole-number low and high")
        elif self.low is not None or self.high is not None:
            raise ValueError(f"low: {self.kind} features take no low/high")
        if self.kind == "categorical":
            if self.categories is None or not 3 <= len(self.categories) <= 8:
                raise ValueError("categories: categorical features need 3-8 values")
            _unique(self.categories, "categories")
        elif self.categories is not None:
            raise ValueError(f"categories: {self.kind} features take no categories")
        return self

    @property
    def bounds(self) -> tuple[float | None, float | None]:
        """Hard limits: a percentage lies in 0..100 unless the file says otherwise."""
        if self.unit == "%":
            return (
                0.0 if self.minimum is None else self.minimum,
                100.0 if self.maximum is None else self.maximum,
            )
        return self.minimum, self.maximum

    def column(
        self,
        role: FeatureRole,
        correlated_with: str | None = None,
        missing_rate: float = 0.0,
    ) -> FeatureColumn:
        return FeatureColumn(
            name=self.name,
            kind=self.kind,
            description=self.description,
            unit=self.unit,
            role=role,
            low=self.low,
            high=self.high,
            decimals=0 if self.kind == "integer" else self.decimals,
            categories=list(self.categories) if self.categories else None,
            correlated_with=correlated_with,
            missing_rate=missing_rate,
            minimum=self.bounds[0],
            maximum=self.bounds[1],
        )


class BinaryTarget(_Frozen):
    """A 0/1 outcome; the description says what 1 means."""

    name: Identifier
    description: Sentence

    def column(self) -> TargetColumn:
        return TargetColumn(name=self.name, description=self.description, kind="binary")


class MulticlassTarget(_Frozen):
    """Unordered labels; they become CSV column names in probability submissions."""

    kind: ClassVar[Literal["categorical", "ordinal"]] = "categorical"

    name: Identifier
    description: Sentence
    classes: list[Identifier] = Field(min_length=3, max_length=6)

    @model_validator(mode="after")
    def _distinct(self) -> MulticlassTarget:
        _unique(self.classes, "classes")
        return self

    def column(self) -> TargetColumn:
        return TargetColumn(
            name=self.name, description=self.description, kind=self.kind, classes=list(self.classes)
        )


class OrdinalTarget(MulticlassTarget):
    """Labels listed from lowest to highest."""

    kind: ClassVar[Literal["categorical", "ordinal"]] = "ordinal"


class RegressionTarget(_Frozen):
    """A continuous outcome with a realistic scale, so generated values read plausibly."""

    name: Identifier
    description: Sentence
    unit: str = ""
    center: float
    scale: float = Field(gt=0.0)
    decimals: int = Field(default=2, ge=0, le=6)
    nonnegative: bool

    @model_validator(mode="after")
    def _plausible(self) -> RegressionTarget:
        if self.nonnegative and self.center < 0:
            raise ValueError(f"center: {self.center} is negative but nonnegative is true")
        return self

    def column(self) -> TargetColumn:
        return TargetColumn(
            name=self.name,
            description=self.description,
            kind="continuous",
            unit=self.unit,
            center=self.center,
            scale=self.scale,
            decimals=self.decimals,
            nonnegative=self.nonnegative,
        )


class DomainTargets(_Frozen):
    """Candidate targets, keyed by the task type they serve; groups feed multi-target tasks."""

    binary: list[BinaryTarget] = Field(min_length=2)
    multiclass: list[MulticlassTarget] = Field(min_length=2)
    ordinal: list[OrdinalTarget] = Field(min_length=1)
    regression: list[RegressionTarget] = Field(min_length=2)
    multi_target_regression: list[
        Annotated[list[RegressionTarget], Field(min_length=2, max_length=3)]
    ] = Field(min_length=1)
    multilabel: list[Annotated[list[BinaryTarget], Field(min_length=2, max_length=4)]] = Field(
        min_length=1
    )

    def every(self) -> list[BinaryTarget | MulticlassTarget | RegressionTarget]:
        """All targets, groups flattened, in file order."""
        return [
            *self.binary,
            *self.multiclass,
            *self.ordinal,
            *self.regression,
            *(t for group in self.multi_target_regression for t in group),
            *(t for group in self.multilabel for t in group),
        ]


class Domain(_Frozen):
    """One application setting: the story and the column vocabulary to tell it with."""

    name: Identifier
    title: str = Field(min_length=3, max_length=80)
    entity: Phrase  # what one row is, e.g. "hive"
    entity_plural: Phrase
    context: str = Field(min_length=20, max_length=300)
    features: list[DomainFeature] = Field(min_length=16)
    targets: DomainTargets
    constraints: list[Constraint] = []  # facts every row obeys (count <= capacity, ...)
    derived: list[DerivedQuantity] = []  # quantities a hidden rule may read

    @model_validator(mode="after")
    def _consistent(self) -> Domain:
        feature_names = [f.name for f in self.features]
        _unique(feature_names, "features")
        kinds = [f.kind for f in self.features]
        if sum(k in ("numeric", "integer") for k in kinds) < 8:
            raise ValueError("features: need >= 8 numeric or integer features")
        if kinds.count("categorical") < 3:
            raise ValueError("features: need >= 3 categorical features")
        if kinds.count("boolean") < 2:
            raise ValueError("features: need >= 2 boolean features")
        targets = self.targets.every()
        target_names = [t.name for t in targets]
        _unique(target_names, "targets")
        taken = set(feature_names) | set(target_names)
        clashes = sorted(set(feature_names) & set(target_names))
        if clashes:
            raise ValueError(f"targets: names {clashes} are also feature names")
        self._check_structure()
        reserved = sorted(taken & RESERVED_NAMES)
        if reserved:
            raise ValueError(f"features: {reserved} is reserved for the id column")
        for t in targets:
            if isinstance(t, MulticlassTarget):
                bad = sorted(set(t.classes) & (taken | RESERVED_NAMES))
                if bad:
                    raise ValueError(
                        f"targets: {t.name} classes {bad} equal a column name; class labels "
                        "become submission column names"
                    )
        return self

    def _check_structure(self) -> None:
        """Constraints and derived quantities name features of fitting kinds; a constraint's
        bound is built before the column it bounds (file order)."""
        kinds = {f.name: f.kind for f in self.features}
        numeric = {n for n, k in kinds.items() if k in ("numeric", "integer")}
        constrained = [c.column for c in self.constraints]
        _unique(constrained, "constraints")
        for i, c in enumerate(self.constraints):
            if c.column not in numeric or (c.bound and c.bound not in numeric):
                raise ValueError(f"constraints: {c.column} and its bound must be numeric features")
            if c.when and kinds.get(c.when) not in ("boolean", "categorical"):
                raise ValueError(f"constraints: when {c.when!r} must be a flag or category")
            levels = self.feature(c.when).categories if c.when else None
            if levels is not None and c.when_value not in levels:
                raise ValueError(f"constraints: {c.when_value!r} is not a {c.when} level")
            if c.bound in constrained[i:]:
                raise ValueError(f"constraints: {c.bound} must be constrained before {c.column}")
        derived_names = [d.name for d in self.derived]
        _unique(derived_names, "derived")
        for d in self.derived:
            if not set(d.of) <= numeric:
                raise ValueError(f"derived: {d.name} must combine numeric features")
            if d.name in kinds:
                raise ValueError(f"derived: {d.name} is also a feature name")

    def feature(self, name: str) -> DomainFeature:
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(f"domain {self.name} has no feature {name!r}")

    def target_options(self, task_type: TaskType) -> list[list[TargetColumn]]:
        """Each option is the target list of one task of that type."""
        t = self.targets
        groups: list[list[Any]] = {
            TaskType.BINARY: [[x] for x in t.binary],
            TaskType.MULTICLASS: [[x] for x in t.multiclass],
            TaskType.ORDINAL: [[x] for x in t.ordinal],
            TaskType.REGRESSION: [[x] for x in t.regression],
            TaskType.MULTI_TARGET_REGRESSION: t.multi_target_regression,
            TaskType.MULTILABEL: t.multilabel,
        }.get(task_type, [])
        return [[x.column() for x in group] for group in groups]


def parse_domain(text: str, path: Path) -> Domain:
    domain = parse_model(text, path, Domain, DomainError, "a domain file")
    if path.stem != domain.name:
        raise DomainError(f"{path}: field 'name': {domain.name!r} must equal the file name")
    return domain


def load_domain(path: Path) -> Domain:
    return parse_domain(read_text(path, DomainError), path)


@functools.cache
def _load_all(directory: Path) -> tuple[Domain, ...]:
    paths = sorted(directory.glob("*.yaml"))
    if not paths:
        raise DomainError(f"{directory}: no domain files (*.yaml)")
    errors, domains = [], []
    for path in paths:
        try:
            domains.append(load_domain(path))
        except DomainError as exc:
            errors.append(str(exc))
    if errors:  # report every bad file at once, so one fix-up pass is enough
        raise DomainError("\n".join(errors))
    return tuple(sorted(domains, key=lambda d: d.name))


def load_domains(directory: Path | None = None) -> dict[str, Domain]:
    """Every domain in the folder by name, sorted; parsed once per folder and cached."""
    resolved = (directory or DOMAINS_DIR).resolve()
    return {d.name: d for d in _load_all(resolved)}
