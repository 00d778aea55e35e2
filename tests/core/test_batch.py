"""A batch's ledger (sandforge.batch) without Prefect: publishing settled candidates, the
budget rule, the summary in draw order; and a whole batch of the real pipeline run serially
in a fresh interpreter that never imports Prefect."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sandforge.agents.llm.cost import call_cost_usd
from sandforge.agents.providers import get_provider
from sandforge.seeds.registry import load_all

from sandforge.batch import Batch
from sandforge.draws import Waves
from sandforge.pipeline import Candidate, Rejection, Stage
from sandforge.stages import STAGE_ORDER
from sandforge.summary import funnel

CARDS = {c.id: c for c in load_all()}
TWO_CARDS = [CARDS["spaceship-titanic"], CARDS["playground-series-s3e18"]]
CALL = {  # one LLM call's ledger entry: a million uncached input tokens
    "provider": "anthropic",
    "model": "claude-sonnet-4-6",
    "role": "strategist",
    "input_tokens": 1_000_000,
    "output_tokens": 0,
    "cache_creation_input_tokens": 0,
    "cache_read_input_tokens": 0,
}


def costly_plan(candidate: Candidate) -> Candidate:
    """Planning that costs one CALL (what an LLM strategist charges), plans nothing."""
    candidate.usage.append(dict(CALL))
    return candidate


class Publishing(Stage):
    """Publish that records what it published; raises for the labels in `failing`."""

    name = "publish"

    def __init__(self, failing: frozenset[str] = frozenset()) -> None:
        self.published: list[str] = []
        self.failing = failing

    def run(self, candidate: Candidate) -> None:
        if candidate.label in self.failing:
            raise ConnectionError("store unreachable")
        self.published.append(candidate.label)
        candidate.bundle_path = f"store/{candidate.label}"


def ledger(tmp_path: Path, publisher: Stage, budget: float | None = None) -> Batch:
    waves = Waves(TWO_CARDS, get_provider(), 7, 1, 2, tmp_path, costly_plan)
    return Batch(waves, publisher, budget)


def rejected(candidate: Candidate, reason: str = "flat") -> Candidate:
    candidate.rejection = Rejection("thresholds", reason)
    return candidate


def test_accepted_candidates_are_published_rejected_ones_are_not(tmp_path: Path):
    publisher = Publishing()
    batch = ledger(tmp_path, publisher)
    first, second = batch.draw()
    assert batch.settle(first).bundle_path == "store/spaceship-titanic#0"
    batch.settle(rejected(second))
    assert publisher.published == ["spaceship-titanic#0"]
    assert batch.waves.short_of_quota() == {"playground-series-s3e18": 1}


def test_a_publish_error_rejects_the_candidate_and_a_replacement_is_drawn(tmp_path: Path):
    batch = ledger(tmp_path, Publishing(failing=frozenset({"spaceship-titanic#0"})))
    first, _ = batch.draw()
    settled = batch.settle(first)
    assert settled.rejection == Rejection("publish", "error: ConnectionError: store unreachable")
    assert [c.label for c in batch.draw()] == ["spaceship-titanic#1"]


def test_the_budget_counts_this_runs_spend_but_not_builds_reused_from_the_cache(
    tmp_path: Path,
):
    one_call = call_cost_usd(CALL)
    for from_cache, drawn_next in ((False, []), (True, ["spaceship-titanic#1"])):
        batch = ledger(tmp_path / str(from_cache), Publishing(), budget=1.5 * one_call)
        first, _ = batch.draw()  # one call spent before the second draw: under budget
        batch.settle(rejected(first), from_cache=from_cache)
        assert [c.label for c in batch.draw()] == drawn_next
        assert batch.waves.stopped == (None if from_cache else "budget")


def test_the_summary_follows_draw_order_whatever_order_candidates_settle(tmp_path: Path):
    batch = ledger(tmp_path, Publishing(), budget=None)
    first, second = batch.draw()
    batch.settle(rejected(second, "leak"))
    batch.settle(rejected(first, "flat"))
    replacements = list(batch.draw())  # the cap (2) allows one more each
    for candidate in reversed(replacements):
        batch.settle(rejected(candidate))
    assert list(batch.draw()) == []
    summary = batch.summary()
    drawn = [first.label, second.label, "spaceship-titanic#1", "playground-series-s3e18#1"]
    assert [r["candidate"] for r in summary["rejections"]] == drawn
    assert summary["candidates"] == 4 and summary["accepted"] == 0
    assert summary["llm"]["total"]["calls"] == 4  # every drawn candidate planned once
    assert summary["short_of_quota"] == {c.id: 1 for c in TWO_CARDS}
    assert summary["stopped"] is None


def test_the_funnel_counts_what_entered_and_left_each_stage(tmp_path: Path):
    card, provider = TWO_CARDS[0], get_provider()
    candidates = [Candidate(card, provider, i, i, tmp_path) for i in range(4)]
    candidates[0].rejection = Rejection("review", "leak")
    for c in candidates[1:3]:
        c.rejection = Rejection("thresholds", "flat ladder")
    rows = {r["stage"]: r for r in funnel(candidates, STAGE_ORDER)}
    assert rows["extract_dna"] == {"stage": "extract_dna", "entered": 4, "rejected": 0}
    assert rows["review"]["rejected"] == 1
    assert rows["thresholds"] == {"stage": "thresholds", "entered": 3, "rejected": 2}
    assert rows["publish"] == {"stage": "publish", "entered": 1, "rejected": 0}


@pytest.mark.slow
def test_a_whole_batch_runs_serially_without_prefect(tmp_path: Path):
    """Drawing, the real sandboxed build, publishing and the summary, in a fresh interpreter."""
    script = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from serial_batch import run_batch\n"
        "summary = run_batch(sys.argv[1], 'spaceship-titanic', 1, 7, Path(sys.argv[2]))\n"
        "prefect = sorted(m for m in sys.modules if m.split('.')[0] == 'prefect')\n"
        "print(json.dumps({'summary': summary, 'prefect': prefect}, default=str))\n"
    )
    (tmp_path / "work").mkdir()
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "store"), str(tmp_path / "work")],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=Path(__file__).parents[1],  # tests/: serial_batch.py
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["prefect"] == []
    (task,) = out["summary"]["tasks"]
    manifest = json.loads((Path(task["path"]) / "manifest.json").read_text())
    assert manifest["task_id"] == task["task_id"] and manifest["seed_id"] == "spaceship-titanic"
