"""A batch's outcome as plain data: what the CLI prints, artifacts show and reports plot."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

from sandforge.pipeline import Candidate

DIVERSITY_FIELDS = ("domain", "modality", "task_type", "metric")


def _reason_kind(reason: str) -> str:
    return reason.split(":", 1)[0]


def _medians(samples: Iterable[dict[str, float]]) -> dict[str, float]:
    values: dict[str, list[float]] = defaultdict(list)
    for sample in samples:
        for name, seconds in sample.items():
            values[name].append(seconds)
    return {name: round(statistics.median(v), 4) for name, v in sorted(values.items())}


def funnel(candidates: list[Candidate], stage_order: list[str]) -> list[dict[str, Any]]:
    """Per stage, in pipeline order: candidates that reached it and how many it rejected."""
    rejected = Counter(c.rejection.stage for c in candidates if c.rejection is not None)
    entered, rows = len(candidates), []
    for stage in [*stage_order, *sorted(set(rejected) - set(stage_order))]:
        rows.append({"stage": stage, "entered": entered, "rejected": rejected[stage]})
        entered -= rejected[stage]
    return rows


def task_entry(candidate: Candidate, reused: bool) -> dict[str, Any]:
    recipe, manifest, thresholds = candidate.recipe, candidate.manifest, candidate.thresholds
    assert recipe is not None and manifest is not None and thresholds is not None
    return {
        "task_id": manifest["task_id"],
        "version": manifest["version"],
        "seed_id": candidate.card.id,
        "domain": recipe.domain,
        "modality": recipe.modality,
        "task_type": recipe.task_type.value,
        "metric": recipe.metric,
        "is_lower_better": thresholds.is_lower_better,
        "rule_family": recipe.rule.family,
        "thresholds": thresholds.as_dict(),
        "scores": candidate.scores,
        "sandbox": candidate.sandbox,
        "path": candidate.bundle_path,
        "reused": reused,
    }


def summarize(
    candidates: list[Candidate], stage_order: list[str], reused: set[str] = frozenset()
) -> dict[str, Any]:
    """`reused` holds the labels of candidates whose build came from Prefect's result cache."""
    accepted = [c for c in candidates if c.rejection is None]
    rejected = [c for c in candidates if c.rejection is not None]
    by_stage: dict[str, Counter] = defaultdict(Counter)
    for c in rejected:
        by_stage[c.rejection.stage][_reason_kind(c.rejection.reason)] += 1  # type: ignore[union-attr]
    tasks = [task_entry(c, c.label in reused) for c in accepted]
    return {
        "candidates": len(candidates),
        "accepted": len(accepted),
        "rejected": len(rejected),
        "reused": sum(t["reused"] for t in tasks),
        "acceptance_rate": round(len(accepted) / len(candidates), 3) if candidates else 0.0,
        "funnel": funnel(candidates, stage_order),
        "rejections_by_stage": {s: dict(r) for s, r in sorted(by_stage.items())},
        "rejections": [
            {"candidate": c.label, "stage": c.rejection.stage, "reason": c.rejection.reason}  # type: ignore[union-attr]
            for c in rejected
        ],
        "tasks": tasks,
        # Every backend that ran a ladder in this batch (rejected candidates included).
        "sandbox": sorted({c.sandbox for c in candidates if c.sandbox}),
        "diversity": {
            field: dict(Counter(t[field] for t in tasks).most_common())
            for field in DIVERSITY_FIELDS
        },
        "median_stage_seconds": _medians(c.timings for c in candidates),
        "median_baseline_seconds": _medians(c.baseline_seconds for c in candidates),
    }
