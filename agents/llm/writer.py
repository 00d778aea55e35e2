"""LLM writer: description.md from the recipe's public facts only.

The model writes the prose: title, scene and task. The factual sections (files, column table,
evaluation, submission format, notes) are the factory's, as the offline writer states them:
a model that restates the metric or the submission columns can only get them wrong, and a
small model cannot be trusted to name every column. Any such section in the model's text is
replaced. The model never sees feature roles, the rule or the noise settings, so it cannot
leak them; the whole text must also pass the structural review (leak words, length, every
submission column named) before it is accepted, else it is sent back for repair.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field
from sandforge.agents.llm.prompts import load_prompt
from sandforge.agents.llm.schemas import obj, text
from sandforge.agents.offline.writer import METRIC_TEXT, SUBMISSION_TEXT, fact_sections, notes
from sandforge.agents.recipe import Recipe
from sandforge.agents.structural_review import MAX_DESCRIPTION_CHARS, StructuralReviewer
from sandforge.validators.metrics import metric_info

if TYPE_CHECKING:  # the SDKs import slowly; only LLM runs need them
    from sandforge.agents.llm.chat import Chat


class DescriptionAnswer(BaseModel):
    """The writer's answer."""

    model_config = ConfigDict(
        extra="forbid", title="Description"
    )  # the schema title the model sees

    markdown: str = Field(min_length=80, max_length=MAX_DESCRIPTION_CHARS)


# Where the model's prose ends: the first heading of a section the factory writes.
FACT_HEADING = re.compile(r"^#+\s*(files|columns|data|evaluation|submission|notes)\b", re.I | re.M)


def description(recipe: Recipe, markdown: str) -> str:
    """The model's title, scene and task, then the factory's factual sections."""
    prose = FACT_HEADING.split(markdown, maxsplit=1)[0].strip()
    if not prose.startswith("# "):
        prose = f"# {recipe.title}\n\n{prose}"
    return "\n".join([prose, "", *fact_sections(recipe, "rows", recipe.entity)]) + "\n"


def public_facts(recipe: Recipe) -> dict[str, Any]:
    """What an agent may know. Columns sorted by name: their order must not hint at roles."""
    return {
        "title": recipe.title,
        "setting": recipe.domain.replace("_", " "),
        "one_row_is": recipe.entity,
        "id_column": recipe.id_column,
        "targets": [
            {
                "name": t.name,
                "meaning": t.description,
                "unit": t.unit,
                "labels": recipe.class_labels(t) if t.kind != "continuous" else None,
            }
            for t in recipe.targets
        ],
        "columns": [
            {
                "name": f.name,
                "kind": f.kind,
                "unit": f.unit,
                "meaning": f.description,
                "categories": f.categories,
            }
            for f in sorted(recipe.features, key=lambda f: f.name)
        ],
        "rows": {"train.csv": recipe.n_train, "test.csv": recipe.n_test},
        "metric": METRIC_TEXT[recipe.metric],
        "better": "lower" if metric_info(recipe.metric).lower_is_better else "higher",
        "submission_columns": recipe.submission_columns(),
        "submission_values": SUBMISSION_TEXT[recipe.submission_kind],
        "notes": notes(recipe, "rows"),
    }


class LlmWriter:
    def __init__(self, chat: Chat):
        self.chat = chat

    def write(self, recipe: Recipe) -> str:
        def finish(answer: DescriptionAnswer) -> str:
            written = description(recipe, answer.markdown)
            verdict = StructuralReviewer().review(recipe, written)
            if not verdict.accepted:
                raise ValueError(verdict.reason)
            return written

        schema = {"title": "Description", **obj(markdown=text(1500, 80))}
        prompt = load_prompt("writer")
        return self.chat.ask(prompt, public_facts(recipe), DescriptionAnswer, finish, schema)
