"""One batch's ledger: what was drawn, how each candidate settled, what it cost, the summary.

The generate_batch flow builds candidates concurrently and reports each one here as it
settles; the ledger publishes accepted ones, keeps the draw order the summary follows, and
answers the budget rule (stop drawing once this run's LLM spend reaches `budget_usd`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sandforge.agents.llm.cost import batch_report, candidate_cost_usd
from sandforge.draws import Waves
from sandforge.pipeline import Candidate, Stage
from sandforge.stages import STAGE_ORDER, StageCall, call_directly, rejected_on_failure, run_stages
from sandforge.summary import summarize


@contextmanager
def scratch_folder() -> Iterator[Path]:
    """The batch's working folder, removed afterwards unless SANDFORGE_KEEP_WORKDIR is set."""
    workdir = Path(tempfile.mkdtemp(prefix="sandforge-batch-"))
    try:
        yield workdir
    finally:
        if not os.environ.get("SANDFORGE_KEEP_WORKDIR"):
            shutil.rmtree(workdir, ignore_errors=True)


@dataclass
class Batch:
    """Draws through `waves`, publishes with `publisher` (each stage called with `call`)."""

    waves: Waves
    publisher: Stage  # storage.stages.Publish for the batch's store
    budget_usd: float | None = None
    call: StageCall = call_directly
    drawn: list[Candidate] = field(default_factory=list)  # draw order, which the summary keeps
    done: dict[str, Candidate] = field(default_factory=dict)  # label -> settled candidate
    reused: set[str] = field(default_factory=set)  # labels built from the result cache

    def draw(self) -> Iterator[Candidate]:
        """The candidates `waves` can draw now, within the budget."""
        for candidate in self.waves.draw(self.out_of_budget):
            self.drawn.append(candidate)
            yield candidate

    def out_of_budget(self) -> bool:
        """LLM money this run spent; builds reused from the result cache cost nothing now."""
        if self.budget_usd is None:
            return False
        spent = (self.done.get(c.label, c) for c in self.drawn if c.label not in self.reused)
        return sum(candidate_cost_usd(c) for c in spent) >= self.budget_usd

    def settle(self, candidate: Candidate, from_cache: bool = False) -> Candidate:
        """Publish a built candidate unless rejected; returns it settled (published or not)."""
        if candidate.rejection is None:
            candidate = rejected_on_failure(self._publish, candidate)
        if from_cache:
            self.reused.add(candidate.label)
        self.waves.settle(candidate)
        self.done[candidate.label] = candidate
        return candidate

    def summary(self) -> dict[str, Any]:
        """The batch summary (sandforge.summary), with why drawing stopped, LLM spend and
        the seeds left short of their quota."""
        candidates = [self.done[c.label] for c in self.drawn]
        summary = summarize(candidates, STAGE_ORDER, self.reused)
        summary["stopped"] = self.waves.stopped
        fresh = [c for c in candidates if c.label not in self.reused]
        summary["llm"] = batch_report(fresh, summary["accepted"])
        summary["short_of_quota"] = self.waves.short_of_quota()
        return summary

    def _publish(self, candidate: Candidate) -> Candidate:
        return run_stages(candidate, (self.publisher,), self.call)
