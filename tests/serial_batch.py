"""A whole batch through the plain modules in one thread, no Prefect: draw (sandforge.draws),
build (sandforge.stages), publish and summarize (sandforge.batch). The flow does the same
with builds on a task runner; the draws, and so the bundles, are the same."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sandforge.agents.providers import get_provider
from sandforge.seeds.registry import select
from sandforge.storage.backends import open_store
from sandforge.storage.stages import Publish

from sandforge.batch import Batch
from sandforge.draws import Waves, attempt_cap
from sandforge.stages import BUILDING, rejected_on_failure, run_stages


def run_batch(
    store: str, seeds: str, per_seed: int, rng_seed: int, workdir: Path
) -> dict[str, Any]:
    """The batch's summary; its accepted bundles are in `store`."""
    cards = select(seeds, warn=False)
    waves = Waves(cards, get_provider(), rng_seed, per_seed, attempt_cap(per_seed), workdir)
    batch = Batch(waves, Publish(open_store(store)))
    while drawn := list(batch.draw()):
        for candidate in drawn:
            built = rejected_on_failure(lambda c: run_stages(c, BUILDING), candidate)
            batch.settle(built)
    return batch.summary()
