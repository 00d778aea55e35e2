"""The pipeline's stages in order, and running a candidate through them.

Each stage is defined in its own layer (agents/, synthesis/, validators/, storage/); this is
the one list that puts them in order. Planning (DNA, mutation) runs in draw order, so a batch
stays distinct; building turns a plan into a packaged bundle; publishing comes last.

How a stage is called is the caller's choice: directly here, or (in the generate_batch flow)
as a Prefect task with retries when it can fail transiently.
"""

from __future__ import annotations

from collections.abc import Callable

from sandforge.agents.stages import Describe, Design, ExtractDna, Mutate, Review
from sandforge.pipeline import Candidate, Rejection, Stage
from sandforge.storage.stages import Package, Publish
from sandforge.synthesis.stage import Synthesize
from sandforge.validators.craft_checks import CheckCrafts
from sandforge.validators.stages import (
    CheckExpectations,
    RunBaselines,
    SetThresholds,
    VerifyEvaluator,
)

PLANNING: tuple[Stage, ...] = (ExtractDna(), Mutate())
BUILDING: tuple[Stage, ...] = (
    Design(),
    Synthesize(),
    Describe(),
    Review(),
    CheckExpectations(),
    RunBaselines(),
    SetThresholds(),
    CheckCrafts(),
    Package(),
    VerifyEvaluator(),
)
# Publish comes last; the batch makes it, for its store.
STAGE_ORDER = [s.name for s in (*PLANNING, *BUILDING)] + [Publish.name]

StageCall = Callable[[Stage, Candidate], Candidate]


class StageFailed(Exception):
    """A stage raised (past its retries, if any): the candidate ends rejected, with the error."""

    def __init__(self, stage: str, error: str):
        super().__init__(stage, error)
        self.stage, self.error = stage, error

    def __str__(self) -> str:
        return f"{self.stage}: {self.error}"

    def rejection(self) -> Rejection:
        return Rejection(self.stage, f"error: {self.error}")


def call_directly(stage: Stage, candidate: Candidate) -> Candidate:
    return stage(candidate)


def run_stages(
    candidate: Candidate, stages: tuple[Stage, ...], call: StageCall = call_directly
) -> Candidate:
    """Run stages in order until one rejects; a stage that raises raises StageFailed.

    A stage that rejects returns normally (a verdict is deterministic); anything it raises
    counts as an error, named in the rejection the caller records.
    """
    for stage in stages:
        try:
            candidate = call(stage, candidate)
        except Exception as exc:
            raise StageFailed(stage.name, f"{type(exc).__name__}: {exc}") from exc
        if candidate.rejection is not None:
            break
    return candidate


def rejected_on_failure(run: Callable[[Candidate], Candidate], candidate: Candidate) -> Candidate:
    """`run(candidate)`, or the candidate rejected with the error of the stage that failed."""
    try:
        return run(candidate)
    except StageFailed as exc:
        candidate.rejection = exc.rejection()
        return candidate
