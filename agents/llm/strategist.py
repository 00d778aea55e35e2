"""LLM data strategist: moves the seed's DNA to a new domain, target, rule family and noise."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from sandforge.agents.dna import MutationPlan, TaskDNA
from sandforge.agents.llm.prompts import load_prompt
from sandforge.agents.llm.schemas import plan_schema
from sandforge.agents.recipe import IDENTIFIER
from sandforge.validators.metrics import TaskType, metrics_for

if TYPE_CHECKING:  # the SDKs import slowly; only LLM runs need them
    from sandforge.agents.llm.chat import Chat

# Asked freely, models drift back to the same few settings; a seeded sector spreads a batch.
SECTORS = (
    "agriculture",
    "aviation",
    "construction",
    "education",
    "energy",
    "environmental monitoring",
    "fisheries",
    "healthcare operations",
    "hospitality",
    "insurance operations",
    "logistics",
    "manufacturing",
    "maritime",
    "mining",
    "public services",
    "retail",
    "sports",
    "telecommunications",
    "culture and museums",
    "water and sanitation",
)
TARGET_COUNTS = {TaskType.MULTILABEL: (2, 4), TaskType.MULTI_TARGET_REGRESSION: (2, 3)}
REGRESSION = (TaskType.REGRESSION, TaskType.MULTI_TARGET_REGRESSION)


def plan_problems(
    plan: MutationPlan, dna: TaskDNA, avoid: frozenset[tuple[str, str, str]]
) -> list[str]:
    """What keeps a plan from making a sound, distinct task of the seed's shape."""
    problems = []
    if plan.task_type != dna.task_type:
        problems.append(f"task_type: must stay {dna.task_type.value!r}")
    allowed = [m.name for m in metrics_for(dna.task_type)]
    if plan.metric not in allowed:
        problems.append(f"metric: must be one of {allowed}")
    for name in (plan.domain, *plan.target_names):
        if not re.fullmatch(IDENTIFIER, name) or len(name) > 50:
            problems.append(f"{name!r}: names must be snake_case, at most 50 characters")
    low, high = TARGET_COUNTS.get(dna.task_type, (1, 1))
    if not low <= len(plan.target_names) <= high:
        problems.append(f"target_names: {dna.task_type.value} takes {low}-{high} target(s)")
    if plan.distinct_key in avoid:
        problems.append(f"{list(plan.distinct_key)} is in avoid: change domain, target or rule")
    if plan.rule_family == "sparse" and plan.n_signal != 2:
        problems.append("n_signal: the sparse family takes exactly 2 signal features")
    if not 2 <= plan.n_signal <= 6:
        problems.append("n_signal: must be 2-6")
    if not 6 <= plan.n_signal + plan.n_correlated + plan.n_distractors <= 16:
        problems.append("features: n_signal + n_correlated + n_distractors must be 6-16")
    if not 1.5 <= plan.signal_strength <= 4.0:
        problems.append("signal_strength: must be 1.5-4")
    if plan.n_train < 80 or plan.n_test < 200:
        problems.append("n_train must be >= 80 and n_test >= 200")
    noise = plan.noise
    if noise.label_noise > 0.1 or noise.target_noise > 0.8:
        problems.append("noise: label_noise <= 0.1 and target_noise <= 0.8")
    if dna.task_type in REGRESSION and noise.minority_rate is not None:
        problems.append("noise.minority_rate: must be null for regression")
    if noise.shift_feature is not None:
        problems.append("noise.shift_feature: must be null (the designer picks it)")
    return problems


class LlmStrategist:
    def __init__(self, chat: Chat):
        self.chat = chat

    def mutate(
        self, dna: TaskDNA, rng_seed: int, avoid: frozenset[tuple[str, str, str]]
    ) -> MutationPlan:
        payload = {
            "seed": dna.model_dump(mode="json"),
            "allowed_metrics": [m.name for m in metrics_for(dna.task_type)],
            "sector": SECTORS[rng_seed % len(SECTORS)],
            "avoid": [list(key) for key in sorted(avoid)],
        }

        def finish(plan: MutationPlan) -> MutationPlan:
            problems = plan_problems(plan, dna, avoid)
            if problems:
                raise ValueError("\n".join(problems))
            return plan

        prompt = load_prompt("strategist")
        return self.chat.ask(prompt, payload, MutationPlan, finish, plan_schema(dna))
