"""Craft checks, run for real: sandboxed scripts, scored on the test answers, against the
task's own tier step; the record lands in the manifest."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest
from sandforge.agents.providers import get_provider
from sandforge.agents.recipe import CRAFT_NAMES
from sandforge.seeds.card import Quirk
from sandforge.seeds.registry import load_all
from sandforge.storage.stages import manifest_for
from sandforge.validators.baselines.runner import run_ladder, write_task_json
from sandforge.validators.craft_checks import tier_step
from sandforge.validators.evaluator import evaluator_config, score_submission

from sandforge.bundle_files import PRIVATE, PUBLIC
from sandforge.pipeline import Candidate
from sandforge.stages import BUILDING, PLANNING

CRAFT_CARD = "spaceship-titanic"
QUIRKS = [Quirk.GEO_FEATURES, Quirk.TIME_COLUMN, Quirk.HIGH_CARDINALITY, Quirk.LEAKAGE_TRAP]


def _build(seed_id: str, quirks: list[Quirk] | None, rng_seed: int) -> Candidate:
    card = next(c for c in load_all() if c.id == seed_id)
    if quirks is not None:
        card = card.model_copy(update={"quirks": quirks})
    workdir = Path(tempfile.mkdtemp(prefix="sandforge-test-crafts-"))
    try:
        candidate = Candidate(
            card=card, provider=get_provider(), attempt=0, rng_seed=rng_seed, workdir=workdir
        )
        for stage in (*PLANNING, *BUILDING):
            candidate = stage(candidate)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return candidate


@pytest.fixture(scope="module")
def crafted() -> Candidate:
    """The first accepted of a few draws (a draw can lack learnable signal without crafts)."""
    for rng_seed in (5, 6, 7, 8):
        candidate = _build(CRAFT_CARD, QUIRKS, rng_seed)
        if candidate.rejection is None:
            return candidate
    raise AssertionError(f"no accepted draw: {candidate.rejection}")


def test_each_quirk_gets_a_measured_craft_check(crafted: Candidate) -> None:
    assert crafted.recipe is not None and crafted.thresholds is not None
    assert [c["quirk"] for c in crafted.crafts] == [q.quirk for q in crafted.recipe.quirks]
    assert manifest_for(crafted)["crafts"] == crafted.crafts
    step = tier_step(crafted.thresholds)
    assert step > 0
    for record in crafted.crafts:
        assert record["craft"] == CRAFT_NAMES[record["quirk"]]
        assert record["tier_step"] == pytest.approx(step, abs=1e-6)
        assert record["carried"] == (record["gain"] >= record["tier_step"])
        lower = crafted.thresholds.is_lower_better
        change = (-1 if lower else 1) * (record["with"] - record["without"])
        assert record["gain"] == pytest.approx(change, abs=1e-6)


def test_carried_crafts_gain_on_the_test_set(crafted: Candidate) -> None:
    """Distances, timestamp parts, split codes and dropping the leak each pay here."""
    gains = {c["craft"]: c["gain"] for c in crafted.crafts}
    carried = {c["craft"] for c in crafted.crafts if c["carried"]}
    assert carried, crafted.crafts
    assert all(gains[name] > 0 for name in carried)
    assert gains["drop_leak"] > 0 and gains["geo_distance"] > 0


def test_no_quirks_no_craft_checks() -> None:
    candidate = _build("leaf-classification", None, rng_seed=5)
    assert candidate.recipe is not None and not candidate.recipe.quirks
    assert candidate.crafts == [] and "crafts" in candidate.timings


def test_the_pool_applies_the_crafts_so_gold_pays_for_them(
    crafted: Candidate, tmp_path: Path
) -> None:
    """Gold is the pool's score; the pool reads the quirks from task.json as an agent reads
    them from the description. Without them the same pool scores worse."""
    assert crafted.recipe is not None and crafted.thresholds is not None
    config = evaluator_config(crafted.recipe, None)
    (tmp_path / "private").mkdir()
    answers = tmp_path / "private" / "answer.csv"
    answers.write_bytes(crafted.files[f"{PRIVATE}/answer.csv"])
    scores = {}
    for told in (True, False):
        work = tmp_path / str(told)
        work.mkdir()
        for name in ("train.csv", "test.csv"):
            (work / name).write_bytes(crafted.files[f"{PUBLIC}/{name}"])
        write_task_json(work, crafted.recipe)
        if not told:
            spec = json.loads((work / "task.json").read_text())
            (work / "task.json").write_text(json.dumps(spec | {"quirks": []}))
        run = run_ladder(work, ("pool",))["pool"]
        scores[told] = score_submission(config, run.submission, answers, answers.parent)
    sign = -1 if crafted.thresholds.is_lower_better else 1
    assert sign * (scores[True] - scores[False]) > 0, scores
    assert scores[True] == pytest.approx(crafted.thresholds.gold, abs=1e-5)  # 5 digits stored
