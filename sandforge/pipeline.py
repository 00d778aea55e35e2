"""One candidate task moving through small stages behind one base class.

Each stage lives in the folder of its part of the factory (agents/, synthesis/, validators/,
storage/) and subclasses `Stage`. The Prefect flow turns every stage into one task; a stage
that rejects a candidate records why, and later stages let the rejected candidate pass by.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from sandforge.agents.dna import MutationPlan, TaskDNA
    from sandforge.agents.recipe import Recipe
    from sandforge.agents.roles import Provider
    from sandforge.seeds.card import SeedCard
    from sandforge.synthesis.data import TaskData
    from sandforge.tiers import Thresholds


class Rejected(Exception):
    """Raised by a stage: the candidate is unsound, with a reason a person can act on."""


@dataclass(frozen=True)
class Rejection:
    stage: str
    reason: str


@dataclass
class Candidate:
    """Everything known about one attempt at a task; stages fill it in order."""

    card: SeedCard
    provider: Provider
    attempt: int
    rng_seed: int
    workdir: Path
    avoid: frozenset[tuple[str, str, str]] = frozenset()  # plans this batch already took
    difficulty: str = "medium"  # easy, medium or hard: applied to the plan by the mutate stage
    dna: TaskDNA | None = None
    plan: MutationPlan | None = None
    recipe: Recipe | None = None
    data: TaskData | None = None
    description: str | None = None
    validation: dict[str, Any] = field(default_factory=dict)
    scores: dict[str, float] = field(default_factory=dict)
    baseline_seconds: dict[str, float] = field(default_factory=dict)
    sandbox: str | None = None  # the sandbox backend that ran the ladder
    thresholds: Thresholds | None = None
    crafts: list[dict[str, Any]] = field(default_factory=list)  # one craft check per quirk
    files: dict[str, bytes] = field(default_factory=dict)  # bundle path -> content
    bundle_path: str | None = None
    manifest: dict[str, Any] | None = None
    rejection: Rejection | None = None
    timings: dict[str, float] = field(default_factory=dict)
    usage: list[dict[str, Any]] = field(default_factory=list)  # one entry per LLM call

    @property
    def label(self) -> str:
        return f"{self.card.id}#{self.attempt}"


_LEDGER: ContextVar[list[dict[str, Any]] | None] = ContextVar("sandforge_ledger", default=None)


@contextmanager
def charging(ledger: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """Within the block, `record_usage` appends to `ledger`.

    A context variable rather than a parameter: roles keep their signatures, and concurrent
    candidates (one thread each) never charge each other.
    """
    token = _LEDGER.set(ledger)
    try:
        yield ledger
    finally:
        _LEDGER.reset(token)


def record_usage(entry: dict[str, Any]) -> None:
    """Charge one LLM call to the candidate whose stage is running; a no-op outside stages."""
    ledger = _LEDGER.get()
    if ledger is not None:
        ledger.append(entry)


class Stage(ABC):
    """A step of the pipeline. Subclasses set `name` and implement `run`."""

    name: ClassVar[str]
    retries: ClassVar[int] = 0  # >0 for stages that can fail transiently

    def retries_for(self, candidate: Candidate) -> int:
        """Retries this stage gets on `candidate`: 0 when nothing it does there can fail
        transiently (a retry would give the same verdict)."""
        return self.retries

    def __call__(self, candidate: Candidate) -> Candidate:
        if candidate.rejection is not None:
            return candidate
        start = time.perf_counter()
        try:
            with charging(candidate.usage):
                self.run(candidate)
        except Rejected as verdict:
            candidate.rejection = Rejection(self.name, str(verdict))
        finally:
            candidate.timings[self.name] = time.perf_counter() - start
        return candidate

    @abstractmethod
    def run(self, candidate: Candidate) -> None:
        """Fill in this stage's part of the candidate, or raise `Rejected`."""
