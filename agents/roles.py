"""The roles of the pipeline, one small interface each, and the provider that bundles them.

The offline provider and the LLM providers implement the same roles, so the pipeline never
knows which one is playing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from sandforge.agents.dna import MutationPlan, TaskDNA
from sandforge.agents.recipe import Recipe
from sandforge.seeds.card import SeedCard


class DnaExtractor(Protocol):
    def extract(self, card: SeedCard) -> TaskDNA: ...


class Strategist(Protocol):
    """Moves the task to a new problem: domain, target, metric, rule family, noise.

    `avoid` holds the (domain, targets, rule family) combinations this batch already took.
    """

    def mutate(
        self, dna: TaskDNA, rng_seed: int, avoid: frozenset[tuple[str, str, str]]
    ) -> MutationPlan: ...


class DataDesigner(Protocol):
    """Turns a plan into the executable recipe synthesis runs."""

    def design(self, dna: TaskDNA, plan: MutationPlan, rng_seed: int) -> Recipe: ...


class Writer(Protocol):
    """Writes description.md; must never reveal the hidden rule."""

    def write(self, recipe: Recipe) -> str: ...


@dataclass(frozen=True)
class Verdict:
    accepted: bool
    reason: str = ""


class Reviewer(Protocol):
    """Semantic review: a rejecting verdict ends the candidate with its reason."""

    def review(self, recipe: Recipe, description: str) -> Verdict: ...


LOCAL_PROVIDERS = frozenset({"offline"})  # providers whose roles never call an LLM


@dataclass(frozen=True)
class Provider:
    name: str
    model: str
    extractor: DnaExtractor
    strategist: Strategist
    designer: DataDesigner
    writer: Writer
    reviewer: Reviewer

    @property
    def calls_llm(self) -> bool:
        """Whether the roles call a model, and so can fail in ways a retry may fix."""
        return self.name not in LOCAL_PROVIDERS
