"""The difficulty knob moves signal, noise and quirk count the same way for every plan."""

from __future__ import annotations

from pathlib import Path

import pytest
from sandforge.agents.difficulty import with_difficulty
from sandforge.agents.providers import get_provider
from sandforge.agents.stages import ExtractDna, Mutate
from sandforge.seeds.registry import load_all

from sandforge.pipeline import Candidate

CARDS = [c for c in load_all() if c.generatable]
PROVIDER = get_provider()
CASES = [(card, seed) for card in CARDS for seed in range(6)]


def _quirks(plan) -> int:
    """Noise quirks a plan carries: missing cells, corrupted targets, flipped labels, shift."""
    noise = plan.noise
    return sum(
        [plan.missing_rate > 0, noise.outlier_rate > 0, noise.label_noise > 0, noise.shift > 0]
    )


@pytest.mark.parametrize(("card", "seed"), CASES, ids=[f"{c.id}-{s}" for c, s in CASES])
def test_harder_plans_have_weaker_signal_more_noise_and_more_quirks(card, seed: int) -> None:
    plan = PROVIDER.strategist.mutate(PROVIDER.extractor.extract(card), seed, frozenset())
    easy, medium, hard = (with_difficulty(plan, d, seed) for d in ("easy", "medium", "hard"))
    assert medium == plan.model_copy(update={"difficulty": "medium"})
    assert easy.signal_strength > medium.signal_strength > hard.signal_strength
    for field in ("label_noise", "target_noise", "outlier_rate"):
        low, mid, high = (getattr(p.noise, field) for p in (easy, medium, hard))
        assert low <= mid <= high, field
    assert easy.noise.target_noise < medium.noise.target_noise < hard.noise.target_noise
    assert easy.n_distractors <= medium.n_distractors < hard.n_distractors
    assert _quirks(easy) <= _quirks(medium) <= _quirks(hard)
    assert easy.noise.shift == 0.0
    # the rest of the problem stays: the knob changes how hard, not which task
    assert hard.distinct_key == easy.distinct_key == plan.distinct_key
    assert (hard.metric, hard.n_train, hard.n_test) == (plan.metric, plan.n_train, plan.n_test)


def test_hard_adds_quirks_the_seed_lacks() -> None:
    added = 0
    for card, seed in CASES:
        plan = PROVIDER.strategist.mutate(PROVIDER.extractor.extract(card), seed, frozenset())
        added += _quirks(with_difficulty(plan, "hard", seed)) > _quirks(plan)
    assert added >= len(CASES) // 2


@pytest.mark.parametrize("difficulty", ["easy", "medium", "hard"])
def test_the_candidates_difficulty_reaches_the_recipe(tmp_path: Path, difficulty: str) -> None:
    candidate = Candidate(card=CARDS[0], provider=PROVIDER, attempt=0, rng_seed=5, workdir=tmp_path)
    candidate.difficulty = difficulty
    for stage in (ExtractDna(), Mutate()):
        stage.run(candidate)
    assert candidate.plan is not None and candidate.plan.difficulty == difficulty
    recipe = PROVIDER.designer.design(candidate.dna, candidate.plan, 5)  # type: ignore[arg-type]
    assert recipe.difficulty == difficulty
