"""Craft checks: does the seed's craft the task carries actually pay?

For each recipe quirk, baselines/crafts/run.py fits the same solver without and with the craft
(timestamp parts, a distance, split codes, the leaky column dropped, class weights, a log
transform) in the sandbox; both submissions are scored on the test answers as every rung of
the ladder is. The gain (in the metric's better direction) counts as carried only when it is
at least one tier step: the smaller of the bronze->silver and silver->gold gaps of the task's
thresholds, whatever rule validators/thresholds.py used to set them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from sandforge.agents.recipe import CRAFT_NAMES, QuirkSpec, Recipe
from sandforge.validators.baselines.runner import (
    BaselineFailed,
    run_reporting_script,
    write_task_json,
)
from sandforge.validators.evaluator import evaluator_config, score_submission

from sandforge.bundle_files import PRIVATE, PUBLIC
from sandforge.pipeline import Candidate, Rejected, Stage
from sandforge.tiers import Thresholds


def tier_step(thresholds: Thresholds) -> float:
    """One tier step: the smaller medal gap of the thresholds as set."""
    return min(abs(thresholds.silver - thresholds.bronze), abs(thresholds.gold - thresholds.silver))


def run_crafts(
    workdir: Path, recipe: Recipe, timeout_s: float = 120
) -> dict[int, tuple[Path, Path]]:
    """Run every craft check in one sandboxed process; (without, with) submissions per quirk."""
    write_task_json(workdir, recipe)
    pairs = {
        i: (f"craft_{i}_without.csv", f"craft_{i}_with.csv") for i, _ in enumerate(recipe.quirks)
    }
    outputs = tuple(name for pair in pairs.values() for name in pair)
    result, report = run_reporting_script(["crafts/run.py"], workdir, timeout_s, outputs)
    paths = {}
    for i, names in pairs.items():
        entry = report.get(str(i), {})
        if "error" in entry or any(name not in result.outputs for name in names):
            raise BaselineFailed("crafts", str(entry.get("error", "wrote no submission")))
        for name in names:
            (workdir / name).write_bytes(result.outputs[name])
        paths[i] = (workdir / names[0], workdir / names[1])
    return paths


def craft_record(quirk: QuirkSpec, without: float, with_: float, thresholds: Thresholds) -> dict:
    sign = -1.0 if thresholds.is_lower_better else 1.0
    gain = round(sign * (with_ - without), 6)
    step = round(tier_step(thresholds), 6)
    return {
        "quirk": quirk.quirk,
        "craft": CRAFT_NAMES[quirk.quirk],
        "without": without,
        "with": with_,
        "gain": gain,
        "tier_step": step,
        "carried": gain >= step,
    }


class CheckCrafts(Stage):
    """Measure each quirk's craft gain against one tier step; recorded in the manifest."""

    name = "crafts"
    retries = 1  # a sandbox can fail to start

    def run(self, candidate: Candidate) -> None:
        recipe, thresholds = candidate.recipe, candidate.thresholds
        assert recipe is not None and thresholds is not None
        candidate.crafts = []
        if not recipe.quirks:
            return
        root = candidate.workdir / "crafts"
        shutil.rmtree(root, ignore_errors=True)
        work = root / "work"
        work.mkdir(parents=True)
        for name in ("train.csv", "test.csv"):
            (work / name).write_bytes(candidate.files[f"{PUBLIC}/{name}"])
        (root / "private").mkdir()
        answers = root / "private" / "answer.csv"
        answers.write_bytes(candidate.files[f"{PRIVATE}/answer.csv"])
        try:
            pairs = run_crafts(work, recipe)
        except BaselineFailed as exc:
            raise Rejected(str(exc)) from None
        config = evaluator_config(recipe, None)
        for i, quirk in enumerate(recipe.quirks):
            without, with_ = (
                score_submission(config, p, answers, answers.parent) for p in pairs[i]
            )
            candidate.crafts.append(craft_record(quirk, without, with_, thresholds))
