"""LLM reviewer: the semantic check (leak, triviality, realism, metric) after the structural one.

The structural checks run first and cost nothing; only a description that passes them is
worth a call. A flagged problem rejects the candidate with the model's reason.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sandforge.agents.llm.prompts import load_prompt
from sandforge.agents.recipe import Recipe
from sandforge.agents.roles import Verdict
from sandforge.agents.structural_review import StructuralReviewer

if TYPE_CHECKING:  # the SDKs import slowly; only LLM runs need them
    from sandforge.agents.llm.chat import Chat

FLAGS = ("leaks_rule", "trivial", "unrealistic", "metric_unfit")


class ReviewAnswer(BaseModel):
    """The reviewer's answer."""

    model_config = ConfigDict(extra="forbid", title="Review")  # the schema title the model sees

    leaks_rule: bool
    trivial: bool
    unrealistic: bool
    metric_unfit: bool
    reason: str = Field(default="", max_length=600)

    @model_validator(mode="after")
    def _explained(self) -> ReviewAnswer:
        if any(getattr(self, flag) for flag in FLAGS) and not self.reason.strip():
            raise ValueError("reason: say what is wrong and where")
        return self

    def verdict(self) -> Verdict:
        flagged = [flag for flag in FLAGS if getattr(self, flag)]
        if flagged:
            return Verdict(False, f"review flagged {', '.join(flagged)}: {self.reason.strip()}")
        return Verdict(True)


class LlmReviewer:
    def __init__(self, chat: Chat):
        self.chat = chat

    def review(self, recipe: Recipe, description: str) -> Verdict:
        structural = StructuralReviewer().review(recipe, description)
        if not structural.accepted:
            return structural
        payload = {
            "recipe": recipe.model_dump(mode="json", exclude={"task_id", "rng_seed"}),
            "description": description,
        }
        return self.chat.ask(load_prompt("reviewer"), payload, ReviewAnswer, ReviewAnswer.verdict)
