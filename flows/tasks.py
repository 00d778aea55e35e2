"""Pipeline stages as Prefect tasks: retries with exponential backoff and jitter.

A stage that can fail transiently on a candidate (an LLM call, storage, a sandbox start:
`Stage.retries_for` > 0) runs as its own Prefect task and is retried; the others run as plain
calls inside the calling task (`build_candidate`), because a task run costs the API server
more CPU than most stages do. `call_as_task` is how the flow has
sandforge.stages.run_stages call each stage; a verdict is deterministic, only errors retry.
"""

from __future__ import annotations

import functools

from prefect import Task, task
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from sandforge.pipeline import Candidate, Stage


@functools.lru_cache(maxsize=64)
def stage_task(stage: Stage, retries: int) -> Task[[Candidate], Candidate]:
    """One Prefect task per stage instance and retry count, built once."""

    def run_stage(candidate: Candidate) -> Candidate:
        return stage(candidate)

    return task(
        run_stage,
        name=stage.name,
        task_run_name=f"{stage.name}:{{candidate.label}}",
        retries=retries,
        retry_delay_seconds=exponential_backoff(backoff_factor=1),
        retry_jitter_factor=0.5,
        cache_policy=NO_CACHE,  # candidates are mutable, in-memory state
    )


def call_as_task(stage: Stage, candidate: Candidate) -> Candidate:
    """A stage with retries on this candidate as a retried task; any other as a plain call."""
    retries = stage.retries_for(candidate)
    return stage_task(stage, retries)(candidate) if retries else stage(candidate)
