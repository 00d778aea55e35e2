"""Which candidates a batch draws, in what order, and when it stops drawing.

Drawing is deterministic: a candidate's rng seed derives from the batch seed, its seed card
and its attempt number, and plans are made in draw order. Rerunning a batch therefore draws
the same candidates, which is what lets a resumed batch reuse the builds that finished.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sandforge.agents.roles import Provider
from sandforge.pipeline import Candidate
from sandforge.seeds.card import SeedCard
from sandforge.stages import PLANNING, rejected_on_failure, run_stages

ATTEMPTS_PER_TASK = 3  # default attempt cap: this many candidates per accepted task wanted


def derive_seed(batch_seed: int, seed_id: str, attempt: int) -> int:
    """A candidate's rng seed: stable across runs, distinct per seed card and attempt."""
    digest = hashlib.sha256(f"{batch_seed}/{seed_id}/{attempt}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def attempt_cap(per_seed: int, max_attempts: int | None = None) -> int:
    """Candidates drawn per seed at most: `max_attempts`, else 3 per accepted task wanted."""
    return max_attempts or per_seed * ATTEMPTS_PER_TASK


def plan_directly(candidate: Candidate) -> Candidate:
    """The planning stages (DNA, mutation), each called as it is."""
    return run_stages(candidate, PLANNING)


@dataclass
class Waves:
    """Draws and plans candidates, wave by wave, until every seed has its quota or its cap.

    A wave draws what each seed still needs, seed by seed in card order; plans are made in
    (wave, seed, attempt) order, each avoiding every plan drawn before it, so a batch is
    distinct and deterministic however its builds interleave. A seed takes its turn in the
    next wave as soon as its own candidates are settled and the seeds before it have taken
    theirs, not when the whole wave is: a replacement for a rejected candidate then builds
    beside the rest of its wave instead of alone after it, and the draws are the same.
    """

    cards: list[SeedCard]
    roles: Provider
    rng_seed: int
    per_seed: int
    cap: int
    workdir: Path
    plan: Callable[[Candidate], Candidate] = plan_directly
    difficulty: str = "medium"  # easy, medium or hard, for every candidate of the batch
    needed: dict[str, int] = field(init=False)
    attempts: dict[str, int] = field(init=False)
    unsettled: dict[str, int] = field(init=False)  # drawn, not yet settled, per seed
    taken: set[tuple[str, str, str]] = field(default_factory=set)
    stopped: str | None = None  # why drawing stopped before every quota was met
    _turn: int = field(default=0, init=False)  # the card whose turn in this wave is next
    _wave_drew: bool = field(default=False, init=False)  # this wave has drawn a candidate
    _over: bool = field(default=False, init=False)  # a wave drew nothing: drawing is over

    def __post_init__(self) -> None:
        self.needed = {card.id: self.per_seed for card in self.cards}
        self.attempts = dict.fromkeys(self.needed, 0)
        self.unsettled = dict.fromkeys(self.needed, 0)

    def draw(self, out_of_budget: Callable[[], bool]) -> Iterator[Candidate]:
        """Every candidate that can be drawn now, in draw order, one planned at a time.

        Stops at the first seed whose candidates are not all settled. `out_of_budget` is
        asked before each draw: once it says yes, nothing more is drawn (what was drawn
        still builds, so a batch can overshoot by what is in flight).
        """
        while not (self._over or self.stopped):
            if self._turn == len(self.cards):
                self._over = not self._wave_drew
                self._turn, self._wave_drew = 0, False
                continue
            card = self.cards[self._turn]
            if self.unsettled[card.id]:
                return
            for _ in range(min(self.needed[card.id], self.cap - self.attempts[card.id])):
                if out_of_budget():
                    self.stopped = "budget"
                    return
                candidate = rejected_on_failure(self.plan, self._next(card))
                if candidate.plan is not None:
                    self.taken.add(candidate.plan.distinct_key)
                self.unsettled[card.id] += 1
                self._wave_drew = True
                yield candidate
            self._turn += 1

    def settle(self, candidate: Candidate) -> None:
        """Record a drawn candidate's outcome (accepted once `rejection` is None)."""
        self.unsettled[candidate.card.id] -= 1
        if candidate.rejection is None:
            self.needed[candidate.card.id] -= 1

    def short_of_quota(self) -> dict[str, int]:
        return {card_id: n for card_id, n in self.needed.items() if n > 0}

    def _next(self, card: SeedCard) -> Candidate:
        attempt = self.attempts[card.id]
        self.attempts[card.id] += 1
        candidate = Candidate(
            card=card,
            provider=self.roles,
            attempt=attempt,
            rng_seed=derive_seed(self.rng_seed, card.id, attempt),
            workdir=self.workdir / f"{card.id}-{attempt}",
            avoid=frozenset(self.taken),
            difficulty=self.difficulty,
        )
        candidate.workdir.mkdir(parents=True)
        return candidate
