"""Offline data designer: picks concrete columns from the domain library for a plan."""

from __future__ import annotations

import hashlib
import json
import re

import numpy as np
from sandforge.agents.difficulty import KNOBS, Knob
from sandforge.agents.dna import MutationPlan, TaskDNA
from sandforge.agents.offline.domains import load_domains
from sandforge.agents.recipe import DerivedQuantity, QuirkColumn, QuirkSpec, Recipe, RuleSpec
from sandforge.seeds.card import Quirk
from sandforge.validators.metrics import TaskType


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
    """Columns are drawn from the domain whatever their kind, and signal is drawn among them
    uniformly, so a categorical or boolean column carries signal as often as a numeric one."""

    def design(self, dna: TaskDNA, plan: MutationPlan, rng_seed: int) -> Recipe:
        rng = np.random.default_rng([rng_seed, 2])
        domain = load_domains()[plan.domain]
        knob = KNOBS[plan.difficulty]
        library = {f.name: f for f in domain.features}
        numeric = {n for n, f in library.items() if f.kind in ("numeric", "integer")}
        order = [list(library)[i] for i in rng.permutation(len(library))]

        # the rule reads only linked quantities: over parts that vary on their own a ratio is
        # nearly linear in them, and computing it would not pay (measured: bench/realism.py)
        readable = [d for d in domain.derived if d.linked]
        derived: list[DerivedQuantity] = []
        if readable and plan.n_signal >= 2 and rng.random() < knob.derived_rate:
            derived = [readable[int(rng.integers(0, len(readable)))]]
        parts = [n for d in derived for n in d.of]
        reserved = [n for n in order if n in numeric and n not in parts][: plan.n_correlated]
        wanted = min(plan.n_signal + plan.n_distractors, len(library) - len(reserved))
        rest = [n for n in order if n not in parts and n not in reserved]
        table = parts + rest[: max(0, wanted - len(parts))]
        needs_source = plan.n_correlated > 0 or plan.noise.shift > 0
        if needs_source and not set(table) & numeric:  # a numeric source to copy or shift
            table[-1:] = [n for n in rest if n in numeric][:1] or table[-1:]
        candidates = [n for n in table if n not in parts]
        signal = [candidates[i] for i in rng.permutation(len(candidates))]
        signal = signal[: plan.n_signal - len(derived)]
        if needs_source and signal and not parts and not set(signal) & numeric:
            spare_numeric = [n for n in candidates if n in numeric and n not in signal]
            signal[-1:] = spare_numeric[:1] or signal[-1:]
        sources = [n for n in signal if n in numeric] + [n for n in parts if n not in signal]
        correlated = reserved if sources else []

        roles = {n: "distractor" for n in table} | {n: "signal" for n in signal}
        roles |= {n: "correlated" for n in correlated}
        names = [n for n in library if n in roles]  # library order, not role order
        names = [names[i] for i in rng.permutation(len(names))]
        missing = set()
        if plan.missing_rate > 0:
            k = max(1, len(names) // 3)
            missing = {names[i] for i in rng.permutation(len(names))[:k]}
        features = []
        for name in names:
            source = str(rng.choice(sources)) if roles[name] == "correlated" else None
            rate = plan.missing_rate * float(rng.uniform(0.5, 1.5)) if name in missing else 0.0
            features.append(library[name].column(roles[name], source, round(rate, 3)))
        targets = next(
            option
            for option in domain.target_options(plan.task_type)
            if [t.name for t in option] == plan.target_names
        )
        noise = plan.noise
        if noise.shift > 0:
            shift = {"shift_feature": str(rng.choice(sources))} if sources else {"shift": 0.0}
            noise = noise.model_copy(update=shift)
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
            "rule": self._rule(plan, signal, library, knob, rng).model_dump(),
            "noise": noise.model_dump(),
            "n_train": plan.n_train,
            "n_test": plan.n_test,
            "rng_seed": rng_seed,
            "constraints": [
                c.model_dump() for c in domain.constraints if set(c.columns) <= set(roles)
            ],
            "derived": [
                d.model_copy(
                    update={"role": "signal" if d in derived else "distractor"}
                ).model_dump()
                for d in domain.derived
                if set(d.of) <= set(roles) and not (d.linked and roles[d.of[0]] == "correlated")
            ],
            "difficulty": plan.difficulty,
        }
        quirks = quirk_specs(dna.quirks, domain.entity, noise.minority_rate)
        if quirks:  # recipes without quirks keep their ids
            fields["quirks"] = [q.model_dump() for q in quirks]
        plain = json.loads(json.dumps(fields, default=str))
        return Recipe.model_validate({**plain, "task_id": task_id_for(plain)})

    @staticmethod
    def _rule(plan: MutationPlan, signal: list[str], library, knob: Knob, rng) -> RuleSpec:
        """The family and strength the plan chose, plus a numeric x categorical slope (always
        for the interactions family) and, for multilabel, labels that depend on each other."""
        numeric = [n for n in signal if library[n].kind in ("numeric", "integer")]
        groups = [n for n in signal if library[n].kind == "categorical"]
        slopes = []
        wants_slope = plan.rule_family == "interactions" or rng.random() < knob.slope_rate
        if numeric and groups and wants_slope:
            slopes = [(str(rng.choice(numeric)), str(rng.choice(groups)))]
        multilabel = plan.task_type == TaskType.MULTILABEL
        return RuleSpec(
            family=plan.rule_family,
            signal_strength=plan.signal_strength,
            varying_slopes=slopes,
            label_coupling=round(float(rng.uniform(0.4, 0.8)), 3) if multilabel else 0.0,
            label_chain=bool(rng.random() < 0.5) if multilabel else False,
        )
