"""Seed card schema: the structure of a real competition, in our own words, with no data.

A card is a YAML file `seeds/cards/<competition-id>.yaml`. Loading validates it fully; any
problem raises `SeedCardError` naming the file, the field and what is wrong.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sandforge.seeds.yaml_files import parse_model, read_text
from sandforge.validators.metrics import (
    GENERATABLE_TASK_TYPES,
    TaskType,
    UnknownMetricError,
    metric_info,
)

SLUG_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"


class Modality(StrEnum):
    TABULAR = "tabular"
    IMAGE = "image"
    TEXT = "text"
    AUDIO = "audio"
    TIME_SERIES = "time_series"
    GRAPH = "graph"
    MULTIMODAL = "multimodal"


class Quirk(StrEnum):
    CLASS_IMBALANCE = "class_imbalance"
    MISSING_VALUES = "missing_values"
    LEAKAGE_TRAP = "leakage_trap"
    HIGH_CARDINALITY = "high_cardinality"
    TIME_COLUMN = "time_column"
    DISTRIBUTION_SHIFT = "distribution_shift"
    OUTLIERS = "outliers"
    INTERACTIONS = "interactions"
    CORRELATED_FEATURES = "correlated_features"
    NOISY_LABELS = "noisy_labels"
    LONG_TAIL = "long_tail"
    GEO_FEATURES = "geo_features"
    SMALL_DATA = "small_data"
    GROUPED_ENTITIES = "grouped_entities"  # repeated entities: validation must be group-aware
    HEAVY_TAILS = "heavy_tails"  # heavy-tailed numeric features
    COMPOSITIONAL = "compositional"  # parts that sum to a whole (fractions, shares)
    DESCRIPTOR_FAMILIES = "descriptor_families"  # collinear families of measured descriptors


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CardFeature(_Strict):
    name: str = Field(min_length=1)
    type: Literal["numeric", "integer", "categorical", "boolean", "datetime", "text", "geo"]
    role: Literal["feature", "group", "time", "leak"] = "feature"
    missing_rate: float = Field(default=0.0, ge=0.0, lt=1.0)
    cardinality: int | None = Field(default=None, ge=2)
    description: str = ""


class CardTarget(_Strict):
    name: str = Field(min_length=1)
    type: Literal["binary", "categorical", "ordinal", "continuous", "count", "text"]
    n_classes: int | None = Field(default=None, ge=2)
    description: str = ""


class CardSubmission(_Strict):
    columns: list[str] = Field(min_length=2)
    description: str = ""


class SeedCard(_Strict):
    id: str = Field(pattern=SLUG_PATTERN)
    title: str = Field(min_length=1)
    modality: Modality
    task_type: TaskType
    metric: str
    direction: Literal["higher", "lower"]
    id_column: str = Field(min_length=1)
    targets: list[CardTarget] = Field(min_length=1)
    features: list[CardFeature] = Field(min_length=1)
    submission: CardSubmission
    quirks: list[Quirk] = []
    original_train_rows: int | None = Field(default=None, ge=1)
    summary: str = Field(min_length=20)
    generatable: bool = True
    not_generatable_reason: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> SeedCard:
        try:
            info = metric_info(self.metric)
        except UnknownMetricError as exc:
            raise ValueError(f"metric: {exc}") from None
        if self.task_type not in info.task_types:
            raise ValueError(
                f"metric: {self.metric!r} does not fit task type {self.task_type.value!r} "
                f"(it fits {', '.join(sorted(t.value for t in info.task_types))})"
            )
        if info.direction != self.direction:
            raise ValueError(
                f"direction: {self.metric!r} is {info.direction}-is-better, card says "
                f"{self.direction!r}"
            )
        names = [self.id_column, *(t.name for t in self.targets), *(f.name for f in self.features)]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"features: duplicate column names {duplicates}")
        if self.id_column not in self.submission.columns:
            raise ValueError(f"submission.columns: must include the id column {self.id_column!r}")
        multi = self.task_type in (TaskType.MULTILABEL, TaskType.MULTI_TARGET_REGRESSION)
        if multi and len(self.targets) < 2:
            raise ValueError(f"targets: task type {self.task_type.value!r} needs >= 2 targets")
        if not multi and self.task_type in GENERATABLE_TASK_TYPES and len(self.targets) != 1:
            raise ValueError(f"targets: task type {self.task_type.value!r} needs exactly 1 target")
        if self.generatable:
            if self.modality != Modality.TABULAR:
                raise ValueError(
                    f"generatable: only tabular cards can be generated today "
                    f"(modality is {self.modality.value!r}); set generatable: false "
                    "and not_generatable_reason"
                )
            if self.task_type not in GENERATABLE_TASK_TYPES or not info.implemented:
                raise ValueError(
                    f"generatable: task type {self.task_type.value!r} with metric "
                    f"{self.metric!r} cannot be synthesized or graded yet"
                )
        elif not self.not_generatable_reason:
            raise ValueError("not_generatable_reason: required when generatable is false")
        return self


class SeedCardError(ValueError):
    """A card that cannot be used; the message names file, field and problem."""


def parse_card(text: str, path: Path) -> SeedCard:
    card = parse_model(text, path, SeedCard, SeedCardError, "a seed card")
    if path.suffix in (".yaml", ".yml") and path.stem != card.id:
        raise SeedCardError(f"{path}: field 'id': {card.id!r} must equal the file name")
    return card


def load_card(path: Path) -> SeedCard:
    return parse_card(read_text(path, SeedCardError), path)
