"""The difficulty knob: how a plan's signal, noise and quirks move for easy, medium and hard.

It is applied to every provider's plan (offline or LLM) in the mutate stage, so one setting
means the same thing whoever plans. Medium leaves a plan as its strategist made it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sandforge.agents.dna import MutationPlan
from sandforge.agents.recipe import Difficulty
from sandforge.validators.metrics import TaskType


@dataclass(frozen=True)
class Knob:
    signal: float  # multiplies the rule's signal strength
    noise: float  # multiplies label flips, target noise and corrupted targets
    distractors: int  # columns added (or removed) that the rule ignores
    extra_quirks: int  # noise quirks added beyond the seed's (missing cells, corruption)
    derived_rate: float  # chance the rule reads a derived quantity
    slope_rate: float  # chance of a numeric x categorical varying slope


KNOBS: dict[str, Knob] = {
    "easy": Knob(
        signal=1.4, noise=0.5, distractors=-2, extra_quirks=0, derived_rate=0.3, slope_rate=0.2
    ),
    "medium": Knob(
        signal=1.0, noise=1.0, distractors=0, extra_quirks=0, derived_rate=0.5, slope_rate=0.4
    ),
    "hard": Knob(
        signal=0.7, noise=1.6, distractors=2, extra_quirks=2, derived_rate=0.7, slope_rate=0.6
    ),
}


def with_difficulty(plan: MutationPlan, difficulty: Difficulty, rng_seed: int) -> MutationPlan:
    """The plan moved to `difficulty`; medium returns it unchanged (but labelled)."""
    knob = KNOBS[difficulty]
    if difficulty == "medium":
        return plan.model_copy(update={"difficulty": difficulty})
    rng = np.random.default_rng([rng_seed, 7])
    noise = plan.noise
    update = {
        "label_noise": min(0.3, round(noise.label_noise * knob.noise, 3)),
        "target_noise": min(2.0, round(noise.target_noise * knob.noise, 3)),
        "outlier_rate": min(0.1, round(noise.outlier_rate * knob.noise, 3)),
    }
    missing = plan.missing_rate
    if difficulty == "easy":
        update["shift"] = 0.0
        missing = round(missing / 2, 3)
    regression = plan.task_type in (TaskType.REGRESSION, TaskType.MULTI_TARGET_REGRESSION)
    extras = ["missing", "corruption"] if plan.task_type != TaskType.ORDINAL else ["missing"]
    for quirk in list(rng.permutation(extras))[: knob.extra_quirks]:
        if quirk == "missing" and missing == 0:
            missing = round(float(rng.uniform(0.05, 0.15)), 3)
        elif quirk == "corruption" and regression and update["outlier_rate"] == 0:
            update["outlier_rate"] = round(float(rng.uniform(0.02, 0.05)), 3)
        elif quirk == "corruption" and not regression:
            update["label_noise"] = min(0.3, round(update["label_noise"] + 0.03, 3))
    n_distractors = max(1, plan.n_distractors + knob.distractors)
    return plan.model_copy(
        update={
            "difficulty": difficulty,
            "signal_strength": min(10.0, round(plan.signal_strength * knob.signal, 3)),
            "noise": noise.model_copy(update=update),
            "missing_rate": missing,
            "n_distractors": n_distractors,
        }
    )
