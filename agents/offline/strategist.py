"""Offline strategist: a seeded walk through domains x targets x rule families.

Distinctness is a property of the batch, so the flow hands over the combinations already
taken (`avoid`); the walk skips them, which keeps batches distinct without retries.
"""

from __future__ import annotations

import numpy as np
from sandforge.agents.dna import MutationPlan, TaskDNA
from sandforge.agents.offline.domains import Domain, load_domains
from sandforge.agents.recipe import RULE_FAMILIES, NoiseSpec
from sandforge.agents.test_rows import draw_test_rows
from sandforge.seeds.card import Quirk
from sandforge.validators.metrics import TaskType, metrics_for

from sandforge.pipeline import Rejected

PlanKey = tuple[str, str, str]  # (domain, target names, rule family)


def _uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return round(float(rng.uniform(low, high)), 3)


class OfflineStrategist:
    def mutate(
        self, dna: TaskDNA, rng_seed: int, avoid: frozenset[PlanKey] = frozenset()
    ) -> MutationPlan:
        rng = np.random.default_rng([rng_seed, 1])
        domains = load_domains()
        combos = [
            (name, targets, family)
            for name, domain in domains.items()
            for targets in (
                [t.name for t in option] for option in domain.target_options(dna.task_type)
            )
            for family in RULE_FAMILIES
        ]
        fresh = [
            combos[i]
            for i in rng.permutation(len(combos))
            if (combos[i][0], "+".join(combos[i][1]), combos[i][2]) not in avoid
        ]
        if not fresh:
            raise Rejected("every domain/target/rule combination is already used in this batch")
        domain_name, targets, family = fresh[0]
        domain = domains[domain_name]
        quirks = set(dna.quirks)
        n_total = int(np.clip(round(dna.n_features * rng.uniform(0.6, 1.2)), 6, 16))
        n_total = min(n_total, len(domain.features))
        n_signal = 2 if family == "sparse" else int(rng.integers(3, 6))
        n_correlated = (
            int(rng.integers(1, 3))
            if Quirk.CORRELATED_FEATURES in quirks
            else int(rng.integers(0, 2))
        )
        n_correlated = max(0, min(n_correlated, n_total - n_signal - 1))
        missing = dna.max_missing_rate > 0 or Quirk.MISSING_VALUES in quirks
        metric = self._metric(dna, domain, targets, rng)  # first draw of the plan's fields
        return MutationPlan(
            domain=domain_name,
            task_type=dna.task_type,
            metric=metric,
            target_names=targets,
            rule_family=family,
            signal_strength=_uniform(rng, 2.0, 3.5),
            n_signal=n_signal,
            n_distractors=n_total - n_signal - n_correlated,
            n_correlated=n_correlated,
            missing_rate=_uniform(rng, 0.05, 0.2) if missing else 0.0,
            noise=NoiseSpec(
                label_noise=_uniform(rng, 0.04, 0.1)
                if Quirk.NOISY_LABELS in quirks
                else _uniform(rng, 0.0, 0.04),
                target_noise=_uniform(rng, 0.3, 0.6),
                outlier_rate=_uniform(rng, 0.02, 0.05) if Quirk.OUTLIERS in quirks else 0.0,
                minority_rate=self._minority(dna, quirks, rng),
                shift=_uniform(rng, 0.3, 0.8) if Quirk.DISTRIBUTION_SHIFT in quirks else 0.0,
            ),
            # rare classes need enough training rows to appear in train at all
            n_train=max(int(rng.integers(80, 201)), 160 if self._imbalanced(dna, quirks) else 0),
            n_test=draw_test_rows(metric, rng),
        )

    @staticmethod
    def _metric(dna: TaskDNA, domain: Domain, targets: list[str], rng) -> str:
        """Keep the seed's metric half the time, else another that fits the task."""
        option = next(
            o for o in domain.target_options(dna.task_type) if [t.name for t in o] == targets
        )
        nonnegative = all(t.nonnegative for t in option)
        options = [
            m.name for m in metrics_for(dna.task_type) if nonnegative or "rmsle" not in m.name
        ]
        if dna.metric in options and rng.random() < 0.5:
            metric = dna.metric
        else:
            metric = options[int(rng.integers(0, len(options)))]
        # Why not the seed's: with a 1-4% class, accuracy all but ignores it (predicting the
        # others is near optimal), so the imbalance would teach nothing; macro F1 weighs it.
        if metric == "accuracy" and Quirk.CLASS_IMBALANCE in dna.quirks and "macro_f1" in options:
            return "macro_f1"
        return metric

    @staticmethod
    def _imbalanced(dna: TaskDNA, quirks: set[Quirk]) -> bool:
        return Quirk.CLASS_IMBALANCE in quirks and dna.task_type not in (
            TaskType.REGRESSION,
            TaskType.MULTI_TARGET_REGRESSION,
        )

    def _minority(self, dna: TaskDNA, quirks: set[Quirk], rng) -> float | None:
        if not self._imbalanced(dna, quirks):
            return None
        # The seeds' imbalance is extreme (a 1-3% class), so the rarest prior is kept small.
        return (
            _uniform(rng, 0.04, 0.1)
            if dna.task_type == TaskType.BINARY
            else _uniform(rng, 0.015, 0.04)
        )
