"""How many test rows a task gets: enough for its tier steps to stand above test noise.

Rows are drawn per submission kind so that a quarter of the trivial->pool span is usually over
1.5 bootstrap SE (validators.thresholds). Label metrics move in steps of 1/n_test and are the
noisiest (accuracy 0.8 on 400 rows: SE 0.02). The micro-scale limit is on training rows;
evaluation rows are cheap, so this is the factory's call, not a planner's: the mutate stage
applies it to every provider's plan.
"""

from __future__ import annotations

import numpy as np
from sandforge.agents.dna import MutationPlan
from sandforge.validators.metrics import SubmissionKind, metric_info

TEST_ROWS = {
    SubmissionKind.LABEL: (2000, 3000),
    SubmissionKind.PROBABILITY: (1500, 2500),
    SubmissionKind.CLASS_PROBABILITIES: (1500, 2500),
    SubmissionKind.VALUE: (1000, 1500),
}


def draw_test_rows(metric: str, rng: np.random.Generator) -> int:
    low, high = TEST_ROWS[metric_info(metric).submission]
    return int(rng.integers(low, high + 1))


def with_test_rows(plan: MutationPlan, rng_seed: int) -> MutationPlan:
    """The plan with at least its metric's test rows (a planner's smaller choice is raised)."""
    low, _ = TEST_ROWS[metric_info(plan.metric).submission]
    if plan.n_test >= low:
        return plan
    n_test = draw_test_rows(plan.metric, np.random.default_rng([rng_seed, 11]))
    return plan.model_copy(update={"n_test": n_test})
