"""What a batch shows in the Prefect UI: live progress, then tasks, funnel, diversity, report.

Artifact keys are stable, so the UI's Artifacts page keeps each one's history across
batches; every artifact also belongs to its flow run.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from sandforge.flows.progress import emit
from sandforge.storage.local import LocalStore
from sandforge.storage.store import Store

from sandforge.pipeline import Candidate
from sandforge.tiers import TIERS

REPORTS = "_reports"  # beside the bundles; never a task id the stores list
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


def write_report(store: Store, name: str, html: str) -> str:
    """Store the HTML report under `<store>/_reports/<name>.html`; returns its URL."""
    if isinstance(store, LocalStore):
        path = (store.root / REPORTS / f"{name}.html").resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(html, encoding="utf-8")
        return path.as_uri()
    from sandforge.storage.s3 import S3Store

    if isinstance(store, S3Store):
        key = "/".join(p for p in (store.prefix, REPORTS, f"{name}.html") if p)
        store.client.put_object(
            Bucket=store.bucket, Key=key, Body=html.encode(), ContentType="text/html"
        )
        return f"s3://{store.bucket}/{key}"
    raise TypeError(f"no report location for store {store}")


def task_rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per produced task: thresholds and baseline scores side by side."""
    return [
        {
            "task": f"{t['task_id']}@{t['version']}",
            "seed": t["seed_id"],
            "domain": t["domain"],
            "task_type": t["task_type"],
            "metric": t["metric"],
            **{tier: t["thresholds"][tier] for tier in TIERS},
            **{f"score_{name}": score for name, score in sorted(t["scores"].items())},
            "reused": t["reused"],
            "bundle": t["path"],
        }
        for t in summary["tasks"]
    ]


def _counts_table(title: str, counts: dict[str, int]) -> str:
    rows = "\n".join(f"| {name} | {count} |" for name, count in counts.items())
    return f"| {title} | count |\n|---|---:|\n{rows}\n"


def summary_markdown(summary: dict[str, Any], report_url: str) -> str:
    """The funnel (by stage and reason) and diversity counts, with the report's address."""
    funnel = "\n".join(
        f"| {row['stage']} | {row['entered']} | {row['rejected']} |" for row in summary["funnel"]
    )
    reasons = "\n".join(
        f"| {stage} | {reason} | {count} |"
        for stage, by_reason in summary["rejections_by_stage"].items()
        for reason, count in by_reason.items()
    )
    diversity = "\n".join(
        _counts_table(field.replace("_", " "), counts)
        for field, counts in summary["diversity"].items()
    )
    short = summary.get("short_of_quota") or {}
    return (
        f"# Batch: {summary['accepted']} accepted of {summary['candidates']} candidates\n\n"
        f"Acceptance {summary['acceptance_rate']:.0%}, {summary['reused']} reused from the "
        f"result cache{f', short of quota: {short}' if short else ''}.\n\n"
        f"HTML report with plots: [{report_url}]({report_url})\n\n"
        f"## Funnel\n\n| stage | entered | rejected |\n|---|---:|---:|\n{funnel}\n\n"
        "## Rejections by stage and reason\n\n"
        f"| stage | reason | count |\n|---|---|---:|\n{reasons or '| - | none | 0 |'}\n\n"
        f"## Diversity\n\n{diversity}"
    )


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


def report_name(flow_run_name: str) -> str:
    """`<UTC time>-<flow run name>`: sorts by time, names the run the UI shows."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{Path(flow_run_name).name}"
