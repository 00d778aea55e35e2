"""Offline writer: a short, factual description.md built from the recipe's public parts.

It reads only what an agent may know (columns, units, metric, sizes) and never the rule,
the roles of features or the noise settings.
"""

from __future__ import annotations

from sandforge.agents.offline.domains import load_domains
from sandforge.agents.recipe import Recipe
from sandforge.validators.metrics import METRICS, SubmissionKind, metric_info

# How a description names each metric: the registry's words.
METRIC_TEXT = {m.name: m.description for m in METRICS.values() if m.implemented}

SUBMISSION_TEXT = {
    SubmissionKind.LABEL: "one predicted label per target column",
    SubmissionKind.PROBABILITY: "the predicted probability (0 to 1) that each target is 1",
    SubmissionKind.CLASS_PROBABILITIES: "one probability per class column",
    SubmissionKind.VALUE: "one predicted number per target column",
}

QUIRK_KIND_TEXT = {
    "datetime": "date and time",
    "latitude": "number",
    "longitude": "number",
    "code": "text",
    "numeric": "number",
}


def _kind(feature) -> str:
    if feature.kind == "categorical":
        return "category: " + ", ".join(feature.categories or [])
    return {"numeric": "number", "integer": "integer", "boolean": "true/false"}[feature.kind]


def _percent(rate: float) -> str:
    return f"{round(100 * rate, 1):g}%"


def notes(recipe: Recipe, plural: str) -> list[str]:
    """Exactly the data's defects that synthesis applied (each note only when it applied,
    with its size), without saying how the clean data arose."""
    found = []
    if any(f.missing_rate > 0 for f in recipe.features):
        found.append("Some values are missing (empty cells).")
    if recipe.outlier_share > 0:
        found.append(
            f"About {_percent(recipe.outlier_share)} of the training targets were recorded "
            "wrongly, far from their true values; the test answers are recorded correctly."
        )
    if recipe.flip_rate > 0:
        wrong = "flipped" if recipe.targets[0].kind == "binary" else "replaced by a random label"
        found.append(
            f"About {_percent(recipe.flip_rate)} of the labels, in training and test data "
            f"alike, were {wrong} by recording errors."
        )
    if recipe.noise.shift > 0 and recipe.noise.shift_feature:
        found.append(f"The test {plural} were collected later than the training ones.")
    return found


def related(recipe: Recipe) -> list[str]:
    """Facts the data obeys and quantities practitioners compute from its columns: every one
    the domain declares over columns this task has, read by the target or not."""
    lines = []
    for c in recipe.constraints:
        if c.kind == "at_most":
            lines.append(f"`{c.column}` never exceeds `{c.bound}`.")
        else:
            when = str(c.when_value).lower() if isinstance(c.when_value, bool) else c.when_value
            lines.append(f"`{c.column}` is {c.value:g} whenever `{c.when}` is {when}.")
    symbol = {"ratio": "/", "difference": "-", "product": "x"}
    for d in recipe.derived:
        a, b = d.of
        lines.append(f"{d.name.replace('_', ' ')} = `{a}` {symbol[d.op]} `{b}`: {d.description}")
    return lines


def fact_sections(recipe: Recipe, plural: str, entity: str) -> list[str]:
    """Files, columns, evaluation, submission and notes: facts every writer states alike."""
    info = metric_info(recipe.metric)
    lines = [
        "## Files",
        "",
        f"- `train.csv`: {recipe.n_train} {plural} with the target column(s).",
        f"- `test.csv`: {recipe.n_test} {plural}; predict the target(s) for these.",
        "- `sample_submission.csv`: the exact submission format, with placeholder values.",
        "",
        f"Each row is one {entity}, identified by `{recipe.id_column}`.",
        "",
        "| column | type | unit | meaning |",
        "| --- | --- | --- | --- |",
    ]
    for f in recipe.features:
        lines.append(f"| `{f.name}` | {_kind(f)} | {f.unit or '-'} | {f.description} |")
    for c in recipe.quirk_columns():
        kind = QUIRK_KIND_TEXT[c.kind]
        lines.append(f"| `{c.name}` | {kind} | {c.unit or '-'} | {c.description} |")
    better = "Lower" if info.lower_is_better else "Higher"
    lines += [
        "",
        "## Evaluation",
        "",
        f"Submissions are scored by {METRIC_TEXT[recipe.metric]}. {better} is better.",
        "",
        "## Submission",
        "",
        f"A CSV with the columns {', '.join(f'`{c}`' for c in recipe.submission_columns())}"
        f" and one row per `{recipe.id_column}` of `test.csv`, holding "
        f"{SUBMISSION_TEXT[recipe.submission_kind]}.",
    ]
    if facts := related(recipe):
        lines += ["", "## Related quantities", "", *(f"- {x}" for x in facts)]
    if found := notes(recipe, plural):
        lines += ["", "## Notes", "", *(f"- {n}" for n in found)]
    return lines


class OfflineWriter:
    def write(self, recipe: Recipe) -> str:
        domain = load_domains()[recipe.domain]
        plural = domain.entity_plural
        lines = [f"# {recipe.title}", "", domain.context, "", "## Task", ""]
        for target in recipe.targets:
            classes = recipe.class_labels(target)
            detail = f" Labels: {', '.join(classes)}." if target.kind != "continuous" else ""
            unit = f" ({target.unit})" if target.unit else ""
            lines.append(f"Predict `{target.name}`{unit}: {target.description}{detail}")
        lines += ["", *fact_sections(recipe, plural, domain.entity)]
        return "\n".join(lines) + "\n"
