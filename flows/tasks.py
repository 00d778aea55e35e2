"""Pipeline stages as Prefect tasks: retries with exponential backoff and jitter.

A stage that can fail transiently on a candidate (an LLM call, storage, a sandbox start:
`Stage.retries_for` > 0) runs as its own Prefect task and is retried; the others run as plain
calls inside the calling task (`build_candidate`), because a task run costs the API server
more CPU than most stages do. A stage that rejects a candidate returns normally (a verdict is
deterministic: no retry); anything else it raises counts as transient.
"""

from __future__ import annotations

import functools

from prefect import Task, task
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from sandforge.pipeline import Candidate, Rejection, Stage


class StageFailed(Exception):
    """A stage still raised after its retries: the candidate ends rejected, with the error."""

    def __init__(self, stage: str, error: str):
        super().__init__(stage, error)
        self.stage, self.error = stage, error

    def __str__(self) -> str:
        return f"{self.stage}: {self.error}"

    def rejection(self) -> Rejection:
        return Rejection(self.stage, f"error: {self.error}")


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


def run_stages(candidate: Candidate, stages: tuple[Stage, ...]) -> Candidate:
    """Run stages in order until one rejects; raises StageFailed past a stage's retries."""
    for stage in stages:
        retries = stage.retries_for(candidate)
        step = stage_task(stage, retries) if retries else stage
        try:
            candidate = step(candidate)
        except Exception as exc:
            raise StageFailed(stage.name, f"{type(exc).__name__}: {exc}") from exc
        if candidate.rejection is not None:
            break
    return candidate
