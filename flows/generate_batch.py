"""The `generate_batch` flow: seed cards in, verified and published task bundles out.

Orchestration only. Candidates are drawn in waves until every seed has its accepted quota
or hits its attempt cap. Planning (DNA, mutation) runs in draw order, so a batch stays
distinct and deterministic; each planned candidate is then built by one `build_candidate`
task (the stages that can fail transiently nested as tasks of their own) on the flow's task
runner, `SANDFORGE_TASK_SLOTS` (2) at a time, and published as soon as it is built.

Resuming: candidates are recomputed identically from the batch seed, and a finished build
is persisted in Prefect's result storage under a key of its inputs. Running the same batch
again (or retrying its flow run) therefore reuses every build that finished, and publishing
a bundle the store already holds is a no-op.
"""

from __future__ import annotations

import hashlib
import os
import queue
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from prefect import flow, get_run_logger, task
from prefect.futures import PrefectFuture
from prefect.runtime import flow_run
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import Field
from sandforge.agents.llm.cost import batch_report, candidate_cost_usd
from sandforge.agents.providers import get_provider
from sandforge.agents.roles import Provider
from sandforge.agents.stages import Describe, Design, ExtractDna, Mutate, Review
from sandforge.flows.artifacts import BatchProgress, publish_artifacts, report_name, write_report
from sandforge.flows.caching import RESULT_SERIALIZER, build_key
from sandforge.flows.roles import ensure_llm_limit, orchestrated
from sandforge.flows.tasks import StageFailed, run_stages
from sandforge.seeds.card import SeedCard
from sandforge.seeds.registry import select
from sandforge.storage.backends import open_store
from sandforge.storage.stages import Package, Publish
from sandforge.synthesis.stage import Synthesize
from sandforge.validators.stages import (
    CheckExpectations,
    RunBaselines,
    SetThresholds,
    VerifyEvaluator,
)

from sandforge.pipeline import Candidate, Stage
from sandforge.report import render_report
from sandforge.summary import summarize

PLANNING: tuple[Stage, ...] = (ExtractDna(), Mutate())
BUILDING: tuple[Stage, ...] = (
    Design(),
    Synthesize(),
    Describe(),
    Review(),
    CheckExpectations(),
    RunBaselines(),
    SetThresholds(),
    Package(),
    VerifyEvaluator(),
)
STAGE_ORDER = [s.name for s in (*PLANNING, *BUILDING)] + ["publish"]
ProviderName = Literal["offline", "anthropic", "openai", "openai-compatible"]  # a UI dropdown


def task_slots() -> int:
    """Candidates built at once (`SANDFORGE_TASK_SLOTS`, default 2: one per core here)."""
    return int(os.environ.get("SANDFORGE_TASK_SLOTS", "2"))


def derive_seed(batch_seed: int, seed_id: str, attempt: int) -> int:
    digest = hashlib.sha256(f"{batch_seed}/{seed_id}/{attempt}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


@task(
    name="build_candidate",
    task_run_name="build:{candidate.label}",
    cache_key_fn=build_key,
    persist_result=True,
    result_serializer=RESULT_SERIALIZER,
)
def build_candidate(candidate: Candidate) -> Candidate:
    """Every building stage. A stage error fails this task, so only verdicts are cached."""
    return run_stages(candidate, BUILDING)


def plan_candidate(candidate: Candidate) -> Candidate:
    """The planning stages (DNA, mutation), in the flow's own thread."""
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
    plan: Callable[[Candidate], Candidate] = plan_candidate
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
                candidate = self._planned(self._next(card))
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
        )
        candidate.workdir.mkdir(parents=True)
        return candidate

    def _planned(self, candidate: Candidate) -> Candidate:
        try:
            return self.plan(candidate)
        except StageFailed as exc:
            candidate.rejection = exc.rejection()
            return candidate


def outcome(future: PrefectFuture[Candidate], drawn: Candidate) -> tuple[Candidate, bool]:
    """(built candidate, reused from the result cache) of a finished build."""
    try:
        return future.result(), future.state.name == "Cached"
    except StageFailed as exc:
        drawn.rejection = exc.rejection()
        return drawn, False


def publish(candidate: Candidate, publisher: Publish) -> Candidate:
    try:
        return run_stages(candidate, (publisher,))
    except StageFailed as exc:
        candidate.rejection = exc.rejection()
        return candidate


@flow(name="generate_batch", task_runner=ThreadPoolTaskRunner(max_workers=task_slots()))
def generate_batch(
    seeds: str = "all",
    per_seed: Annotated[int, Field(ge=1, le=1000)] = 3,
    provider: ProviderName = "offline",
    model: str | None = None,
    store: str = "store",
    rng_seed: int = 0,
    budget_usd: Annotated[float | None, Field(gt=0)] = None,
    max_attempts_per_seed: Annotated[int | None, Field(ge=1)] = None,
    strict: bool = False,
) -> dict[str, Any]:
    """Generate `per_seed` accepted tasks for each selected seed and publish them to `store`.

    Args:
        seeds: 'all' (every generatable seed card) or comma-separated seed card ids.
        per_seed: Accepted tasks wanted per seed.
        provider: Who plays the agent roles: 'offline' (procedural, no API key) or an LLM
            provider (its key in the worker's environment, see agents/providers.py).
        model: The provider's model; empty for its default.
        store: Bundle store: a local folder (relative to the worker's working directory),
            file:///abs/path or s3://bucket/prefix.
        rng_seed: Batch RNG seed; the same seed, cards and code give identical bundles, and
            rerunning a batch with the same seed resumes it.
        budget_usd: Spending cap for LLM calls in US dollars: no new candidate is drawn once
            it is reached; accepted tasks are kept.
        max_attempts_per_seed: Candidates drawn per seed at most; empty for 3 x per_seed.
        strict: Refuse MLE-bench-lite seeds instead of warning.
    """
    logger = get_run_logger()
    cards = select(seeds, strict=strict)
    roles = get_provider(provider, model)
    if roles.calls_llm:
        ensure_llm_limit()
    target_store = open_store(store)
    publisher = Publish(target_store)
    workdir = Path(tempfile.mkdtemp(prefix="sandforge-batch-"))
    cap = max_attempts_per_seed or per_seed * 3
    waves = Waves(cards, orchestrated(roles), rng_seed, per_seed, cap, workdir)
    progress = BatchProgress(per_seed * len(cards), [c.id for c in cards])
    drawn: list[Candidate] = []  # draw order, which the summary keeps
    done: dict[str, Candidate] = {}  # label -> settled candidate
    reused: set[str] = set()
    builds: dict[PrefectFuture[Candidate], Candidate] = {}
    built: queue.SimpleQueue[PrefectFuture[Candidate]] = queue.SimpleQueue()
    logger.info("batch: %d seed(s) x %d task(s) into %s", len(cards), per_seed, target_store)

    def out_of_budget() -> bool:
        """LLM money this run spent; builds reused from the result cache cost nothing now."""
        if budget_usd is None:
            return False
        spent = (done.get(c.label, c) for c in drawn if c.label not in reused)
        return sum(candidate_cost_usd(c) for c in spent) >= budget_usd

    def settle(candidate: Candidate, from_cache: bool) -> None:
        if candidate.rejection is None:
            candidate = publish(candidate, publisher)
        if candidate.rejection is None:
            logger.info("accepted %s -> %s", candidate.label, candidate.bundle_path)
        else:
            logger.info("rejected %s: %s", candidate.label, candidate.rejection)
        if from_cache:
            reused.add(candidate.label)
        waves.settle(candidate)
        done[candidate.label] = candidate
        progress.record(candidate)

    try:
        while True:
            for candidate in waves.draw(out_of_budget):
                drawn.append(candidate)
                if candidate.rejection is None:  # built while the next one is planned
                    future = build_candidate.submit(candidate)
                    builds[future] = candidate
                    future.add_done_callback(built.put)
                else:
                    settle(candidate, from_cache=False)
            if not builds:
                break
            future = built.get()
            settle(*outcome(future, builds.pop(future)))
    finally:
        if not os.environ.get("SANDFORGE_KEEP_WORKDIR"):
            shutil.rmtree(workdir, ignore_errors=True)
    candidates = [done[c.label] for c in drawn]
    summary = summarize(candidates, STAGE_ORDER, reused)
    summary["stopped"] = waves.stopped
    fresh = [c for c in candidates if c.label not in reused]
    summary["llm"] = batch_report(fresh, summary["accepted"])
    summary["short_of_quota"] = waves.short_of_quota()
    if summary["short_of_quota"]:
        logger.warning("attempt cap reached before quota for: %s", summary["short_of_quota"])
    html = render_report(summary, f"sandforge batch {flow_run.name}", flow_run.parameters)
    summary["report"] = write_report(target_store, report_name(flow_run.name), html)
    publish_artifacts(summary, summary["report"])
    logger.info("report: %s", summary["report"])
    return summary
