"""Structural review: a description is usable and leaks nothing of how the data was made.

Every provider runs it: it is the offline provider's whole reviewer, and the LLM writer and
reviewer run it before (or instead of) asking the model.
"""

from __future__ import annotations

import re

from sandforge.agents.recipe import RULE_FAMILIES, Recipe
from sandforge.agents.roles import Verdict

# SandMLE inlines description.md into an 8192-token prompt beside the file listing.
MAX_DESCRIPTION_CHARS = 12_000
# Word stems that give away how the data was made; any word starting with one is a leak
# ("noisy", "signals", "linearly", "interaction" all count).
LEAK_STEMS = (
    *(family.rstrip("s") for family in RULE_FAMILIES),
    "signal",
    "distractor",
    "correlat",
    "hidden rule",
    "oracle",
    "coefficient",
    "generative",
    "synthetic",
    "nois",
)

LEAK_PATTERN = r"\b(?:" + "|".join(map(re.escape, LEAK_STEMS)) + r")\w*"


class StructuralReviewer:
    def review(self, recipe: Recipe, description: str) -> Verdict:
        # Column meanings come from the vetted domain library; judge the prose around them.
        lowered = "\n".join(
            line for line in description.lower().splitlines() if not line.startswith("|")
        )
        for target in recipe.targets:  # target meanings are vetted library text too
            lowered = lowered.replace(target.description.lower(), "")
        leaks = sorted(set(re.findall(LEAK_PATTERN, lowered)))
        if leaks:
            return Verdict(False, f"description reveals how the data was made: {leaks}")
        if len(description) > MAX_DESCRIPTION_CHARS:
            return Verdict(False, f"description too long ({len(description)} chars)")
        absent = [c for c in recipe.submission_columns() if f"`{c}`" not in description]
        if absent:
            return Verdict(False, f"description does not name submission columns {absent}")
        return Verdict(True)
