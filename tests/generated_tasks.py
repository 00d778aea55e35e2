"""Real generated bundles for tests that need what the factory ships: the offline provider and
every pipeline stage (sandboxed baselines, thresholds, the evaluator contract), called in
process without Prefect, published into a local store.

`metric` overrides the one the design drew, before synthesis, so a test can ask for e.g.
accuracy tasks: the data, baselines, thresholds and evaluator are then generated for it.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from sandforge.agents.providers import get_provider
from sandforge.agents.stages import Design
from sandforge.seeds.registry import load_all
from sandforge.storage.local import LocalStore
from sandforge.storage.stages import Publish

from sandforge.pipeline import Candidate
from sandforge.stages import BUILDING, PLANNING

ATTEMPTS = 4  # per seed: a draw can be rejected (too little signal, ...); the next one is used


def generate(store: Path, seed_ids: list[str], metric: str | None = None) -> list[Path]:
    """One accepted bundle per seed card in `seed_ids`, published to a LocalStore at `store`;
    returns the bundle folders."""
    cards = {card.id: card for card in load_all()}
    local = LocalStore(store)
    # The factory's own stage list, split after Design so `metric` can be set before synthesis.
    split = next(i for i, stage in enumerate(BUILDING) if isinstance(stage, Design)) + 1
    planning = (*PLANNING, *BUILDING[:split])
    building = (*BUILDING[split:], Publish(local))
    bundles = []
    for seed_id in seed_ids:
        for attempt in range(ATTEMPTS):
            workdir = Path(tempfile.mkdtemp(prefix="sandforge-test-gen-"))
            try:
                candidate = Candidate(
                    card=cards[seed_id],
                    provider=get_provider("offline"),
                    attempt=attempt,
                    rng_seed=7000 + attempt,
                    workdir=workdir,
                )
                for stage in planning:
                    candidate = stage(candidate)
                if metric is not None and candidate.recipe is not None:
                    candidate.recipe = candidate.recipe.model_copy(update={"metric": metric})
                for stage in building:
                    candidate = stage(candidate)
            finally:
                shutil.rmtree(workdir, ignore_errors=True)
            if candidate.rejection is None and candidate.bundle_path is not None:
                bundles.append(Path(candidate.bundle_path))
                break
        else:
            raise AssertionError(f"{seed_id}: no accepted task in {ATTEMPTS} attempts")
    return bundles
