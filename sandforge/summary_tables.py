"""A batch summary as tables: one row per task, and the funnel, rejections and diversity in
markdown. The generate_batch flow shows both as Prefect artifacts."""

from __future__ import annotations

from typing import Any

from sandforge.tiers import TIERS


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
