"""Offline data designer: picks concrete columns from the domain library for a plan."""

from __future__ import annotations

import hashlib
import json
import re

import numpy as np
from sandforge.agents.dna import MutationPlan, TaskDNA
from sandforge.agents.offline.domains import load_domains
from sandforge.agents.recipe import QuirkColumn, QuirkSpec, Recipe, RuleSpec
from sandforge.seeds.card import Quirk


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def task_id_for(recipe_fields: dict) -> str:
    """Readable and content-addressed: same recipe, same id."""
    digest = hashlib.sha256(json.dumps(recipe_fields, sort_keys=True).encode()).hexdigest()[:8]
    name = f"{_slug(recipe_fields['domain'])}-{_slug(recipe_fields['targets'][0]['name'])}"
    return f"{name[:70]}-{digest}"


def _columns(*specs: tuple[str, str, str, str]) -> list[QuirkColumn]:
    return [QuirkColumn(name=n, kind=k, description=d, unit=u) for n, k, d, u in specs]  # type: ignore[arg-type]


def quirk_specs(quirks: list[Quirk], entity: str, minority_rate: float | None) -> list[QuirkSpec]:
    """The card's quirks that have a mechanism (synthesis/quirks.py), with their columns."""
    point = "latitude", "longitude"
    table = {
        Quirk.TIME_COLUMN: _columns(
            ("recorded_at", "datetime", f"When the {entity} was recorded (ISO 8601, local).", "")
        ),
        Quirk.GEO_FEATURES: _columns(
            *(
                (f"{end}_{axis[:3]}", axis, f"{axis.capitalize()} of the {where} point.", "deg")
                for end, where in (("origin", "origin"), ("dest", "destination"))
                for axis in point
            )
        ),
        Quirk.HIGH_CARDINALITY: _columns(
            ("unit_code", "code", "Location code: section letter / number / side (P or S).", "")
        ),
        Quirk.LEAKAGE_TRAP: _columns(
            (
                "followup_reading",
                "numeric",
                "Follow-up reading, recorded after the outcome was "
                "known (not known when a prediction is made).",
                "",
            )
        ),
        Quirk.HEAVY_TAILS: _columns(
            ("recorded_amount", "numeric", f"An amount recorded for the {entity}.", "")
        ),
    }
    specs = [QuirkSpec(quirk=q.value, columns=table[q]) for q in quirks if q in table]  # type: ignore[arg-type]
    if Quirk.CLASS_IMBALANCE in quirks and minority_rate is not None:
        specs.append(QuirkSpec(quirk="class_imbalance", rate=minority_rate))
    return specs


class OfflineDesigner:
    def design(self, dna: TaskDNA, plan: MutationPlan, rng_seed: int) -> Recipe:
        rng = np.random.default_rng([rng_seed, 2])
        domain = load_domains()[plan.domain]
        library = {f.name: f for f in domain.features}
        numeric = [n for n, f in library.items() if f.kind in ("numeric", "integer")]
        others = [n for n, f in library.items() if f.kind not in ("numeric", "integer")]
        numeric = [numeric[i] for i in rng.permutation(len(numeric))]
        others = [others[i] for i in rng.permutation(len(others))]

        n_other_signal = int(rng.integers(0, 2)) if plan.n_signal > 2 else 0
        signal = numeric[: plan.n_signal - n_other_signal] + others[:n_other_signal]
        rest_numeric = numeric[len(signal) - n_other_signal :]
        correlated = rest_numeric[: plan.n_correlated]
        pool = rest_numeric[plan.n_correlated :] + others[n_other_signal:]
        pool = [pool[i] for i in rng.permutation(len(pool))]
        distractors = pool[: plan.n_distractors]
        numeric_signal = [n for n in signal if n in numeric]

        roles = {n: "signal" for n in signal} | {n: "distractor" for n in distractors}
        roles |= {n: "correlated" for n in correlated}
        names = [n for n in library if n in roles]  # library order, not role order
        names = [names[i] for i in rng.permutation(len(names))]
        missing = set()
        if plan.missing_rate > 0:
            k = max(1, len(names) // 3)
            missing = {names[i] for i in rng.permutation(len(names))[:k]}
        features = []
        for name in names:
            source = str(rng.choice(numeric_signal)) if roles[name] == "correlated" else None
            rate = plan.missing_rate * float(rng.uniform(0.5, 1.5)) if name in missing else 0.0
            features.append(library[name].column(roles[name], source, round(rate, 3)))
        targets = next(
            option
            for option in domain.target_options(plan.task_type)
            if [t.name for t in option] == plan.target_names
        )
        noise = plan.noise
        if noise.shift > 0:
            noise = noise.model_copy(update={"shift_feature": str(rng.choice(numeric_signal))})
        fields = {
            "seed_id": dna.seed_id,
            "domain": domain.name,
            "title": f"{domain.title}: {targets[0].name.replace('_', ' ')}",
            "entity": domain.entity,
            "task_type": plan.task_type,
            "metric": plan.metric,
            "id_column": f"{_slug(domain.entity).replace('-', '_')}_id",
            "features": [f.model_dump() for f in features],
            "targets": [t.model_dump() for t in targets],
            "rule": RuleSpec(
                family=plan.rule_family, signal_strength=plan.signal_strength
            ).model_dump(),
            "noise": noise.model_dump(),
            "n_train": plan.n_train,
            "n_test": plan.n_test,
            "rng_seed": rng_seed,
        }
        quirks = quirk_specs(dna.quirks, domain.entity, noise.minority_rate)
        if quirks:  # recipes without quirks keep their ids
            fields["quirks"] = [q.model_dump() for q in quirks]
        plain = json.loads(json.dumps(fields, default=str))
        return Recipe.model_validate({**plain, "task_id": task_id_for(plain)})
