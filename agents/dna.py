"""Task DNA (what a seed competition is, structurally), read from its card, and the mutation
plan made from it."""

from __future__ import annotations

from collections import Counter

from pydantic import BaseModel, ConfigDict, Field
from sandforge.agents.recipe import Difficulty, NoiseSpec, RuleFamily
from sandforge.seeds.card import Quirk, SeedCard
from sandforge.validators.metrics import TaskType


class TaskDNA(BaseModel):
    """The seed's structure reduced to what mutation may keep or vary."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed_id: str
    task_type: TaskType
    metric: str
    n_features: int = Field(ge=1)
    feature_kinds: dict[str, int]  # numeric/integer/categorical/boolean/... -> count
    n_targets: int = Field(ge=1)
    n_classes: int | None = None
    max_missing_rate: float = 0.0
    quirks: list[Quirk] = []
    summary: str = ""  # the card's structure in prose, for strategists that read it


class MutationPlan(BaseModel):
    """The new problem: domain, target, metric, hidden rule family, noise and sizes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    domain: str
    task_type: TaskType
    metric: str
    target_names: list[str] = Field(min_length=1)
    rule_family: RuleFamily
    signal_strength: float = Field(gt=0.0, le=10.0)
    n_signal: int = Field(ge=1)
    n_distractors: int = Field(ge=0)
    n_correlated: int = Field(ge=0)
    missing_rate: float = Field(ge=0.0, le=0.4)  # applied to a subset of features
    noise: NoiseSpec
    n_train: int = Field(ge=50, le=200)
    n_test: int = Field(ge=50, le=5000)  # rows are cheap; tiers need them
    difficulty: Difficulty = "medium"

    @property
    def distinct_key(self) -> tuple[str, str, str]:
        """Same key as `Recipe.distinct_key`: domain, targets, rule family."""
        return (self.domain, "+".join(self.target_names), self.rule_family)


class CardDnaExtractor:
    """Every provider's extractor: the card declares its structure, nothing to judge."""

    def extract(self, card: SeedCard) -> TaskDNA:
        classes = [t.n_classes for t in card.targets if t.n_classes]
        return TaskDNA(
            seed_id=card.id,
            task_type=card.task_type,
            metric=card.metric,
            n_features=len(card.features),
            feature_kinds=dict(sorted(Counter(f.type for f in card.features).items())),
            n_targets=len(card.targets),
            n_classes=max(classes) if classes else None,
            max_missing_rate=max(f.missing_rate for f in card.features),
            quirks=list(card.quirks),
            summary=card.summary,
        )
