"""What a batch shows in the Prefect UI: live progress, then tasks, funnel, diversity, report.

Artifact keys are stable, so the UI's Artifacts page keeps each one's history across
batches; every artifact also belongs to its flow run. The tables themselves are
sandforge.summary_tables'.
"""

from __future__ import annotations

from typing import Any

from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)

from sandforge.pipeline import Candidate
from sandforge.progress import emit
from sandforge.summary_tables import summary_markdown, task_rows

KEYS = {"tasks": "batch-tasks", "summary": "batch-summary", "report": "batch-report"}


class BatchProgress:
    """Accepted tasks out of those wanted, as a progress artifact and as progress events."""

    def __init__(self, wanted: int, seeds: list[str]):
        self.wanted, self.candidates, self.accepted = wanted, 0, 0
        self.artifact = create_progress_artifact(
            progress=0.0, key="batch-progress", description=self._describe()
        )
        emit(kind="start", tasks_wanted=wanted, seeds=seeds)

    def _describe(self) -> str:
        return f"{self.accepted}/{self.wanted} tasks accepted from {self.candidates} candidates"

    def record(self, candidate: Candidate) -> None:
        self.candidates += 1
        self.accepted += candidate.rejection is None
        progress = 100.0 * min(self.accepted / self.wanted, 1.0) if self.wanted else 100.0
        update_progress_artifact(self.artifact, progress=progress, description=self._describe())
        emit(kind="candidate", label=candidate.label, accepted=candidate.rejection is None)


def publish_artifacts(summary: dict[str, Any], report_url: str) -> None:
    create_table_artifact(
        table=task_rows(summary),
        key=KEYS["tasks"],
        description=f"{summary['accepted']} task(s): thresholds and baseline scores",
    )
    create_markdown_artifact(
        markdown=summary_markdown(summary, report_url),
        key=KEYS["summary"],
        description="funnel, rejections and diversity",
    )
    create_link_artifact(
        link=report_url, link_text="HTML batch report", key=KEYS["report"], description=report_url
    )
