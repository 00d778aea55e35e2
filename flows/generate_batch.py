"""The `generate_batch` flow: seed cards in, verified and published task bundles out.

Prefect wiring only; what it wires lives in plain modules: sandforge.draws (which candidates,
in what order, the attempt cap), sandforge.batch (publishing, the budget, the summary) and
sandforge.stages (the stage list). Planning runs in draw order in the flow's own thread; each
planned candidate is then built by one `build_candidate` task (the stages that can fail
transiently nested as tasks of their own) on the flow's task runner, `SANDFORGE_TASK_SLOTS`
(2) at a time, and published as soon as it is built.

Resuming: candidates are recomputed identically from the batch seed, and a finished build
is persisted in Prefect's result storage under a key of its inputs. Running the same batch
again (or retrying its flow run) therefore reuses every build that finished, and publishing
a bundle the store already holds is a no-op.
"""

from __future__ import annotations

import os
import queue
from typing import Annotated, Any, Literal

from prefect import flow, get_run_logger, task
from prefect.futures import PrefectFuture
from prefect.runtime import flow_run
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import Field
from sandforge.agents.providers import get_provider
from sandforge.agents.recipe import Difficulty
from sandforge.flows.artifacts import BatchProgress, publish_artifacts
from sandforge.flows.caching import RESULT_SERIALIZER, build_candidate_key
from sandforge.flows.roles import ensure_llm_limit, orchestrated
from sandforge.flows.tasks import call_as_task
from sandforge.seeds.registry import select
from sandforge.storage.backends import open_store
from sandforge.storage.stages import Publish

from sandforge.batch import Batch, scratch_folder
from sandforge.draws import Waves, attempt_cap
from sandforge.pipeline import Candidate
from sandforge.report import render_report, report_name, write_report
from sandforge.stages import BUILDING, PLANNING, StageFailed, run_stages

ProviderName = Literal["offline", "anthropic", "openai", "openai-compatible"]  # a UI dropdown


def task_slots() -> int:
    """Candidates built at once (`SANDFORGE_TASK_SLOTS`, default 2: one per core here)."""
    return int(os.environ.get("SANDFORGE_TASK_SLOTS", "2"))


@task(
    name="build_candidate",
    task_run_name="build:{candidate.label}",
    cache_key_fn=build_candidate_key,
    persist_result=True,
    result_serializer=RESULT_SERIALIZER,
)
def build_candidate(candidate: Candidate) -> Candidate:
    """Every building stage. A stage error fails this task, so only verdicts are cached."""
    return run_stages(candidate, BUILDING, call_as_task)


def plan_candidate(candidate: Candidate) -> Candidate:
    """The planning stages (DNA, mutation), in the flow's own thread."""
    return run_stages(candidate, PLANNING, call_as_task)


def outcome(future: PrefectFuture[Candidate], drawn: Candidate) -> tuple[Candidate, bool]:
    """(built candidate, reused from the result cache) of a finished build."""
    try:
        return future.result(), future.state.name == "Cached"
    except StageFailed as exc:
        drawn.rejection = exc.rejection()
        return drawn, False


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
    difficulty: Difficulty = "medium",
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
        difficulty: easy, medium or hard: moves signal strength, noise and quirk count.
    """
    logger = get_run_logger()
    cards = select(seeds, strict=strict)
    roles = get_provider(provider, model)
    if roles.calls_llm:
        ensure_llm_limit()
    target_store = open_store(store)
    progress = BatchProgress(per_seed * len(cards), [c.id for c in cards])
    builds: dict[PrefectFuture[Candidate], Candidate] = {}
    built: queue.SimpleQueue[PrefectFuture[Candidate]] = queue.SimpleQueue()
    logger.info("batch: %d seed(s) x %d task(s) into %s", len(cards), per_seed, target_store)

    with scratch_folder() as workdir:
        cap = attempt_cap(per_seed, max_attempts_per_seed)
        waves = Waves(
            cards, orchestrated(roles), rng_seed, per_seed, cap, workdir, plan_candidate, difficulty
        )
        batch = Batch(waves, Publish(target_store), budget_usd, call_as_task)

        def settle(candidate: Candidate, from_cache: bool) -> None:
            candidate = batch.settle(candidate, from_cache)
            if candidate.rejection is None:
                logger.info("accepted %s -> %s", candidate.label, candidate.bundle_path)
            else:
                logger.info("rejected %s: %s", candidate.label, candidate.rejection)
            progress.record(candidate)

        while True:
            for candidate in batch.draw():
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
    summary = batch.summary()
    if summary["short_of_quota"]:
        logger.warning("attempt cap reached before quota for: %s", summary["short_of_quota"])
    html = render_report(summary, f"sandforge batch {flow_run.name}", flow_run.parameters)
    summary["report"] = write_report(target_store, report_name(flow_run.name), html)
    publish_artifacts(summary, summary["report"])
    logger.info("report: %s", summary["report"])
    return summary
