"""LLM data designer: names, units, ranges and roles of the columns, as a validated Recipe.

The model answers with columns only; everything the plan already fixed (domain, targets,
metric, rule, noise, sizes) and the RNG seed are filled in here, so the recipe cannot drift
from the plan. Recipe validation plus the checks below are the repair signal.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from sandforge.agents.dna import MutationPlan, TaskDNA
from sandforge.agents.llm.prompts import load_prompt
from sandforge.agents.llm.schemas import design_schema
from sandforge.agents.offline.designer import task_id_for
from sandforge.agents.recipe import IDENTIFIER, FeatureColumn, Recipe, RuleSpec, TargetColumn

if TYPE_CHECKING:  # the SDKs import slowly; only LLM runs need them
    from sandforge.agents.llm.chat import Chat


class DesignAnswer(BaseModel):
    """The designer's answer."""

    model_config = ConfigDict(extra="forbid", title="Design")  # the schema title the model sees

    title: str = Field(min_length=3, max_length=80)
    entity: str = Field(pattern=r"^[a-z][a-z0-9 -]*$", max_length=40)
    id_column: str = Field(pattern=IDENTIFIER, max_length=40)
    features: list[FeatureColumn] = Field(min_length=2, max_length=16)
    targets: list[TargetColumn] = Field(min_length=1, max_length=4)
    shift_feature: str | None = None


def _numeric_signal(design: DesignAnswer) -> set[str]:
    return {
        f.name for f in design.features if f.role == "signal" and f.kind in ("numeric", "integer")
    }


def design_problems(design: DesignAnswer, plan: MutationPlan) -> list[str]:
    """What the Recipe model does not check but synthesis or the plan need."""
    problems = []
    names = [t.name for t in design.targets]
    if names != plan.target_names:
        problems.append(f"targets: must be exactly {plan.target_names} in this order")
    roles = [f.role for f in design.features]
    wanted = {
        "signal": plan.n_signal,
        "correlated": plan.n_correlated,
        "distractor": plan.n_distractors,
    }
    for role, count in wanted.items():
        if roles.count(role) != count:
            problems.append(f"features: need {count} with role {role!r}, got {roles.count(role)}")
    numeric_signal = _numeric_signal(design)
    columns = {design.id_column, *(f.name for f in design.features), *names}
    for f in design.features:
        if f.correlated_with and f.correlated_with not in numeric_signal:
            problems.append(f"{f.name}: correlated_with must name a numeric signal feature")
        if f.kind == "integer" and not all(float(v or 0).is_integer() for v in (f.low, f.high)):
            problems.append(f"{f.name}: integer features need whole-number low and high")
        if f.kind != "categorical" and f.categories:
            problems.append(f"{f.name}: only categorical features take categories")
        for value in f.categories or []:
            if not re.fullmatch(IDENTIFIER, value):
                problems.append(f"{f.name}: category {value!r} must be snake_case")
    for t in design.targets:
        if t.kind == "continuous" and t.scale <= 0:
            problems.append(f"{t.name}: scale must be > 0")
        for label in t.classes or []:
            if not re.fullmatch(IDENTIFIER, label) or label in columns:
                problems.append(f"{t.name}: class {label!r} must be snake_case, not a column name")
    missing = [f.name for f in design.features if f.missing_rate > 0]
    if plan.missing_rate == 0 and missing:
        problems.append(f"missing_rate: the plan has no missing values, but {missing} have some")
    if plan.missing_rate > 0 and not missing:
        problems.append("missing_rate: the plan wants missing values in 2-4 features")
    if plan.noise.shift > 0 and design.shift_feature not in numeric_signal:
        problems.append("shift_feature: must name a numeric signal feature")
    return problems


class LlmDesigner:
    def __init__(self, chat: Chat):
        self.chat = chat

    def design(self, dna: TaskDNA, plan: MutationPlan, rng_seed: int) -> Recipe:
        payload = {"plan": plan.model_dump(mode="json"), "seed_features": dna.feature_kinds}

        def finish(design: DesignAnswer) -> Recipe:
            problems = design_problems(design, plan)
            if problems:
                raise ValueError("\n".join(problems))
            return _recipe(design, dna, plan, rng_seed)

        prompt = load_prompt("designer")
        return self.chat.ask(prompt, payload, DesignAnswer, finish, design_schema(plan))


def _recipe(design: DesignAnswer, dna: TaskDNA, plan: MutationPlan, rng_seed: int) -> Recipe:
    # Column order reaches train.csv: shuffle it, so it cannot give roles away.
    order = np.random.default_rng([rng_seed, 2]).permutation(len(design.features))
    shift = design.shift_feature if plan.noise.shift > 0 else None
    fields = {
        "seed_id": dna.seed_id,
        "domain": plan.domain,
        "title": design.title,
        "entity": design.entity,
        "task_type": plan.task_type,
        "metric": plan.metric,
        "id_column": design.id_column,
        "features": [design.features[i] for i in order],
        "targets": design.targets,
        "rule": RuleSpec(family=plan.rule_family, signal_strength=plan.signal_strength),
        "noise": plan.noise.model_copy(update={"shift_feature": shift}),
        "n_train": plan.n_train,
        "n_test": plan.n_test,
        "rng_seed": rng_seed,
        **({"difficulty": plan.difficulty} if plan.difficulty != "medium" else {}),
    }
    plain = json.loads(json.dumps(fields, default=lambda m: m.model_dump(mode="json")))
    return Recipe.model_validate({**plain, "task_id": task_id_for(plain)})
