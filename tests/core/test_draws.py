"""Drawing candidates (sandforge.draws) with the real planning stages and no Prefect: wave
order, replacements beside a wave, the attempt cap, the budget stop, derived rng seeds."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from sandforge.agents.providers import get_provider
from sandforge.seeds.registry import load_all

from sandforge.draws import Waves, attempt_cap, derive_seed
from sandforge.pipeline import Candidate, Rejection, Stage
from sandforge.stages import run_stages

CARDS = {c.id: c for c in load_all()}
CARD, SECOND_CARD = CARDS["spaceship-titanic"], CARDS["playground-series-s3e18"]


def waves(tmp_path: Path, per_seed: int = 1, cap: int = 3) -> Waves:
    return Waves([CARD, SECOND_CARD], get_provider(), 7, per_seed, cap, tmp_path)


def labels(drawn: Iterator[Candidate]) -> list[str]:
    return [c.label for c in drawn]


def settled(candidate: Candidate, accepted: bool) -> Candidate:
    return replace(candidate, rejection=None if accepted else Rejection("thresholds", "flat"))


def never() -> bool:
    return False


def test_a_replacement_is_drawn_while_later_seeds_still_build(tmp_path: Path):
    batch = waves(tmp_path)
    first, second = batch.draw(never)
    assert [first.label, second.label] == ["spaceship-titanic#0", "playground-series-s3e18#0"]
    assert labels(batch.draw(never)) == []  # the first seed's candidate is in flight
    batch.settle(settled(first, accepted=False))
    (replacement,) = batch.draw(never)  # the second seed's build has not finished
    assert replacement.label == "spaceship-titanic#1"
    assert first.plan.distinct_key in replacement.avoid
    assert second.plan.distinct_key in replacement.avoid
    batch.settle(settled(replacement, accepted=True))
    assert labels(batch.draw(never)) == []  # the second seed has not settled: no verdict yet
    batch.settle(settled(second, accepted=True))
    assert labels(batch.draw(never)) == []
    assert batch.short_of_quota() == {}


def test_draws_do_not_depend_on_the_order_builds_finish(tmp_path: Path):
    def run(order: list[int]) -> list[tuple[str, Any]]:
        batch = waves(tmp_path / "-".join(map(str, order)), per_seed=2, cap=4)
        wave = list(batch.draw(never))
        drawn = list(wave)
        for i in order:  # every first-wave candidate of the first seed is rejected
            batch.settle(settled(wave[i], accepted=wave[i].card.id != CARD.id))
            drawn += batch.draw(never)
        for candidate in drawn[len(wave) :]:
            batch.settle(settled(candidate, accepted=True))
        drawn += batch.draw(never)
        return [(c.label, c.plan) for c in drawn]

    in_order, reversed_order = run([0, 1, 2, 3]), run([3, 2, 1, 0])
    assert in_order == reversed_order
    assert [label for label, _ in in_order][4:] == ["spaceship-titanic#2", "spaceship-titanic#3"]


def test_the_attempt_cap_ends_drawing(tmp_path: Path):
    batch = waves(tmp_path)
    for _ in range(3):
        for candidate in list(batch.draw(never)):
            batch.settle(settled(candidate, accepted=candidate.card.id != CARD.id))
    assert labels(batch.draw(never)) == []
    assert batch.attempts == {CARD.id: 3, SECOND_CARD.id: 1}
    assert batch.short_of_quota() == {CARD.id: 1}


def test_the_default_cap_is_three_attempts_per_task_wanted():
    assert (attempt_cap(1), attempt_cap(4)) == (3, 12)
    assert attempt_cap(4, max_attempts=5) == 5


def test_an_exhausted_budget_stops_drawing(tmp_path: Path):
    batch = waves(tmp_path)
    calls = iter([False, True])
    assert labels(batch.draw(lambda: next(calls))) == ["spaceship-titanic#0"]
    assert batch.stopped == "budget"
    assert labels(batch.draw(never)) == []


class NoDnaAtFirst(Stage):
    """A planning stage that raises on every seed's first attempt."""

    name = "extract_dna"

    def run(self, candidate: Candidate) -> None:
        if candidate.attempt == 0:
            raise ValueError("no DNA")


def test_a_planning_error_rejects_the_candidate_and_it_is_replaced(tmp_path: Path):
    batch = replace(waves(tmp_path), plan=lambda c: run_stages(c, (NoDnaAtFirst(),)))
    first, second = batch.draw(never)
    assert (
        first.rejection == second.rejection == Rejection("extract_dna", "error: ValueError: no DNA")
    )
    batch.settle(first)
    (replacement,) = batch.draw(never)
    assert (replacement.label, replacement.rejection) == ("spaceship-titanic#1", None)


def test_rng_seeds_differ_per_seed_and_attempt_and_never_change():
    seeds = {derive_seed(7, card, attempt) for card in ("a", "b") for attempt in range(3)}
    assert len(seeds) == 6
    assert derive_seed(7, "spaceship-titanic", 0) == derive_seed(7, "spaceship-titanic", 0)
    assert derive_seed(7, "a", 0) != derive_seed(8, "a", 0)


def test_drawing_imports_no_prefect(tmp_path: Path):
    """A fresh interpreter draws and plans a wave with the real planning stages."""
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from sandforge.agents.providers import get_provider\n"
        "from sandforge.seeds.registry import select\n"
        "from sandforge.draws import Waves\n"
        "waves = Waves(select('spaceship-titanic'), get_provider(), 7, 2, 6, Path(sys.argv[1]))\n"
        "print(*(c.label for c in waves.draw(lambda: False) if c.plan is not None))\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'prefect'))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    assert done.stdout.splitlines() == ["spaceship-titanic#0 spaceship-titanic#1", "[]"]
