"""Answer schemas narrowed to one request, so that constrained decoding does the checking.

The roles' pydantic models say what a valid answer is in general; a request knows more: the
seed's task type and allowed metrics, the plan's target names and feature counts. These
JSON schemas spell that out with enums, consts, fixed-length arrays, patterns and short
string bounds, and list every field as required. A server that turns a schema into a
grammar (llama.cpp, vLLM) then cannot emit most invalid answers, which is what makes a
135M-parameter model usable; a large model reads the same schema as documentation. Every
value these schemas admit is one the pydantic model accepts: validation stays the judge.

Number bounds are enums of sensible values: grammars cannot bound a float.
"""

from __future__ import annotations

from typing import Any

from sandforge.agents.dna import MutationPlan, TaskDNA
from sandforge.agents.recipe import RULE_FAMILIES, TARGET_KIND
from sandforge.validators.metrics import TaskType, metrics_for

NAME = r"^[a-z][a-z0-9_]{2,30}$"  # snake_case, short enough for a small model to finish
ID_NAME = r"^[a-z][a-z0-9_]{1,24}_id$"
TARGET_COUNTS = {TaskType.MULTILABEL: (2, 4), TaskType.MULTI_TARGET_REGRESSION: (2, 3)}
REGRESSION = (TaskType.REGRESSION, TaskType.MULTI_TARGET_REGRESSION)


def enum(*values: Any) -> dict[str, Any]:
    return {"enum": list(values)}


def text(max_length: int, min_length: int = 1) -> dict[str, Any]:
    return {"type": "string", "minLength": min_length, "maxLength": max_length}


def obj(**properties: dict[str, Any]) -> dict[str, Any]:
    """An object with exactly these properties, all required."""
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def array(item: dict[str, Any], low: int, high: int) -> dict[str, Any]:
    return {"type": "array", "items": item, "minItems": low, "maxItems": high}


def plan_schema(dna: TaskDNA) -> dict[str, Any]:
    """The strategist's answer (a MutationPlan) for a seed of `dna`'s task type."""
    low, high = TARGET_COUNTS.get(dna.task_type, (1, 1))
    regression = dna.task_type in REGRESSION
    noise = obj(
        label_noise=enum(0.0) if regression else enum(0.0, 0.03, 0.06, 0.1),
        target_noise=enum(0.2, 0.4, 0.6, 0.8) if regression else enum(0.0),
        outlier_rate=enum(0.0, 0.02, 0.05),
        minority_rate=enum(None) if regression else enum(None, 0.1, 0.15, 0.2),
        shift=enum(0.0, 0.3, 0.5, 0.8),
        shift_feature=enum(None),
    )
    schema = obj(
        domain={"type": "string", "pattern": NAME},
        task_type=enum(dna.task_type.value),
        metric=enum(*(m.name for m in metrics_for(dna.task_type))),
        target_names=array({"type": "string", "pattern": NAME}, low, high),
        rule_family=enum(*RULE_FAMILIES),
        signal_strength=enum(1.5, 2.0, 2.5, 3.0, 3.5, 4.0),
        n_signal=enum(2, 3, 4, 5, 6),
        n_correlated=enum(0, 1, 2, 3),
        n_distractors=enum(4, 5, 6, 7),  # with the above: 6-16 features in all
        missing_rate=enum(0.0, 0.05, 0.1, 0.2),
        noise=noise,
        n_train=enum(80, 100, 120, 150, 200),
        n_test=enum(200, 300, 400, 500),
    )
    return {"title": "Plan", **schema}


def _numeric(kind: str, role: str, missing: list[float]) -> dict[str, Any]:
    return obj(
        name={"type": "string", "pattern": NAME},
        kind=enum(kind),
        description=text(120),
        unit=text(12, 0),
        role=enum(role),
        low={"type": "number"},
        high={"type": "number"},
        decimals=enum(0) if kind == "integer" else enum(0, 1, 2, 3),
        categories=enum(None),
        correlated_with={"type": "string", "pattern": NAME} if role == "correlated" else enum(None),
        missing_rate=enum(*missing),
    )


def _categorical(role: str, missing: list[float]) -> dict[str, Any]:
    return obj(
        name={"type": "string", "pattern": NAME},
        kind=enum("categorical"),
        description=text(120),
        unit=enum(""),
        role=enum(role),
        low=enum(None),
        high=enum(None),
        decimals=enum(0),
        categories=array({"type": "string", "pattern": NAME}, 3, 6),
        correlated_with=enum(None),
        missing_rate=enum(*missing),
    )


def _boolean(role: str, missing: list[float]) -> dict[str, Any]:
    schema = _categorical(role, missing)
    schema["properties"] |= {"kind": enum("boolean"), "categories": enum(None)}
    return schema


def _feature(role: str, missing: list[float]) -> dict[str, Any]:
    """One feature of `role`; correlated ones track a numeric signal, so are numeric too."""
    if role == "correlated":
        return _numeric("numeric", role, missing)
    kinds = [_numeric("numeric", role, missing), _numeric("integer", role, missing)]
    kinds += [_categorical(role, missing), _boolean(role, missing)]
    return {"anyOf": kinds}


def _target(name: str, kind: str) -> dict[str, Any]:
    classes = array({"type": "string", "pattern": NAME}, 3, 6)
    return obj(
        name=enum(name),
        description=text(150),
        kind=enum(kind),
        classes=classes if kind in ("categorical", "ordinal") else enum(None),
        unit=text(12, 0) if kind == "continuous" else enum(""),
        center={"type": "number"} if kind == "continuous" else enum(0.0),
        scale={"type": "number"} if kind == "continuous" else enum(1.0),
        decimals=enum(0, 1, 2, 3),
        nonnegative={"type": "boolean"} if kind == "continuous" else enum(False),
    )


def design_schema(plan: MutationPlan) -> dict[str, Any]:
    """The designer's answer for `plan`: its roles in fixed slots, its targets by name."""
    missing = [0.0] if plan.missing_rate == 0 else [0.0, plan.missing_rate]
    roles = (
        ["signal"] * plan.n_signal
        + ["correlated"] * plan.n_correlated
        + ["distractor"] * plan.n_distractors
    )
    kind = TARGET_KIND[plan.task_type]
    schema = obj(
        title=text(80, 3),
        entity={"type": "string", "pattern": r"^[a-z][a-z -]{2,30}$"},
        id_column={"type": "string", "pattern": ID_NAME},
        features={
            "type": "array",
            "prefixItems": [_feature(role, missing) for role in roles],
            "minItems": len(roles),
            "maxItems": len(roles),
        },
        targets={
            "type": "array",
            "prefixItems": [_target(name, kind) for name in plan.target_names],
            "minItems": len(plan.target_names),
            "maxItems": len(plan.target_names),
        },
        shift_feature={"type": "string", "pattern": NAME} if plan.noise.shift > 0 else enum(None),
    )
    return {"title": "Design", **schema}
