"""bench.quality end to end on a tiny batch, and the figures it derives from per-task results."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # bench/ is not installed
from bench import quality

POLICY_SOURCES = sorted((Path(quality.__file__).parent / "policies").glob("*.py"))


@pytest.mark.slow
def test_tiny_run_reports_every_figure_and_constant_earns_least(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report.json"
    argv = ["--seeds", "spaceship-titanic", "--per-seed", "1", "--redraws", "1", "--json"]
    code = quality.main([*argv, "--out", str(out)])
    report = json.loads(capsys.readouterr().out)
    assert code in (quality.EXIT_MET, quality.EXIT_MISSED)
    assert json.loads(out.read_text()) == report
    figures = report["figures"]
    assert figures["tasks"] == 1
    assert list(figures["policies"]) == list(quality.POLICIES)
    task = report["tasks"][0]
    assert all(result["valid"] for result in task["policies"].values()), task["policies"]
    rewards = {name: row["mean_reward"] for name, row in figures["policies"].items()}
    assert rewards["constant"] == min(rewards.values())
    assert rewards["constant"] < max(rewards.values())
    assert len(task["draws"]) == 2 and task["draws"][0]["original"]
    assert figures["acceptance"]["redraws"] == 1
    assert task["bootstrap_se"] > 0 and len(task["steps_in_se"]) == 3
    missed = {row["target"] for row in report["must_show"] if not row["met"]}
    assert (code == quality.EXIT_MISSED) == bool(missed)
    assert len(report["must_show"]) == 10


def test_policies_never_open_private_files() -> None:
    """Policies are written against the public files only: no manifest, recipe, task.json,
    answers, and no sandforge import (the ladder's code stays apart from them)."""
    for source in POLICY_SOURCES:
        text = source.read_text()
        for forbidden in ("manifest", "task.json", "private", "answer", "sandforge", "recipe"):
            assert forbidden not in text.lower(), (source.name, forbidden)


def _task(rewards: dict[str, float], tiers: dict[str, str | None], draws: list) -> dict:
    return {
        "policies": {
            p: {"reward": rewards[p], "tier": tiers.get(p), "valid": True, "seconds": 1.0}
            for p in quality.POLICIES
        },
        "steps_in_se": [2.0, 1.0, 3.0],
        "draws": draws,
        "crafts": None,
        "constraint_violations": None,
    }


def test_figures_and_targets_from_per_task_results() -> None:
    rising = dict(zip(quality.POLICIES, (0.2, 0.3, 0.3, 0.7, 0.7, 0.9, 0.9), strict=True))
    gold = {"careful": "gold", "ensemble": "gold", "forest": "bronze", "boosting": "bronze"}
    steady = [{"tier": "gold", "original": True}, {"accepted": True, "tier": "silver"}]
    jumpy = [
        {"tier": "gold", "original": True},
        {"accepted": True, "tier": "median"},
        {"accepted": False, "rejection": "x"},
    ]
    tasks = [_task(rising, gold, steady), _task(rising, gold, jumpy)]
    summary = {"candidates": 2, "accepted": 2, "acceptance_rate": 1.0, "rejections_by_stage": {}}
    f = quality.figures(tasks, summary)
    assert f["policies"]["careful"]["gold_rate"] == 1.0
    assert f["policies"]["naive"]["gold_rate"] == 0.0
    assert f["spearman"]["median"] > 0.9
    assert f["stability"]["spans"] == [1, 3] and f["stability"]["rate"] == 0.5
    assert f["acceptance"]["redraws"] == 3 and f["acceptance"]["redraws_accepted"] == 2
    assert f["tier_steps_in_se"]["tasks_all_steps_ge_1_5"] == 0  # a 1.0 SE step
    report = {
        "figures": f,
        "must_show": quality.must_show(f),
        "tasks": tasks,
        "seconds": 1.0,
        "args": {"redraws": 2},
        "command": "python -m bench.quality",
        "cores": 2,
    }
    for task in tasks:
        task.update(task_id="t", metric="rmse")
    assert "| careful | 6 | 0.900 | 100% | 100% | 0 |" in quality.markdown(report)
    quality.print_report(report)
    verdicts = {row["target"]: row["met"] for row in report["must_show"]}
    assert verdicts["careful gold rate >= 30%"]
    assert not verdicts["careful tier within one level over re-draws on >= 90% of recipes"]
    assert not verdicts["0 domain-constraint violations"]  # not reported counts as unshown


def test_constraint_violations_found_wherever_validation_reports_them() -> None:
    assert quality.constraint_violations({"expectations": {"failed": []}}) is None
    assert quality.constraint_violations({"constraints": {"violations": 0}}) == 0
    assert quality.constraint_violations({"expectations": {"constraint_violations": 3}}) == 3
    assert quality.constraint_violations({"domain_constraints": ["a > b on 4 rows"]}) == 1
