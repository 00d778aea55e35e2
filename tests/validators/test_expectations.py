"""The recipe-derived GX suite passes valid data and names each way data can break.

Recipes and data are built by hand here so that these tests do not depend on synthesis.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import polars as pl
import pytest
from sandforge.agents.recipe import (
    Constraint,
    FeatureColumn,
    NoiseSpec,
    Recipe,
    RuleSpec,
    TargetColumn,
)
from sandforge.synthesis.data import TaskData
from sandforge.validators.expectations import ExpectationReport, validate_task_data
from sandforge.validators.metrics import SubmissionKind, TaskType

FEATURES = [
    FeatureColumn(
        name="age",
        kind="numeric",
        description="age",
        role="signal",
        low=20,
        high=60,
        missing_rate=0.1,
    ),
    FeatureColumn(
        name="rooms", kind="integer", description="rooms", role="distractor", low=1, high=6
    ),
    FeatureColumn(
        name="color",
        kind="categorical",
        description="color",
        role="signal",
        categories=["red", "green", "blue"],
    ),
    FeatureColumn(
        name="owner", kind="boolean", description="owner", role="distractor", missing_rate=0.05
    ),
]
TARGETS = {
    TaskType.BINARY: [TargetColumn(name="churn", description="churned", kind="binary")],
    TaskType.MULTICLASS: [
        TargetColumn(
            name="species", description="species", kind="categorical", classes=["ant", "bee", "cat"]
        )
    ],
    TaskType.REGRESSION: [
        TargetColumn(
            name="price",
            description="price",
            kind="continuous",
            center=100.0,
            scale=20.0,
            nonnegative=True,
        )
    ],
    TaskType.MULTILABEL: [
        TargetColumn(name="a", description="a", kind="binary"),
        TargetColumn(name="b", description="b", kind="binary"),
    ],
}
METRIC = {
    TaskType.BINARY: "roc_auc",
    TaskType.MULTICLASS: "multiclass_log_loss",
    TaskType.REGRESSION: "rmsle",
    TaskType.MULTILABEL: "mean_columnwise_roc_auc",
}


def make_recipe(
    task_type: TaskType = TaskType.BINARY,
    features: list[FeatureColumn] | None = None,
    n_train: int = 120,
    n_test: int = 80,
    metric: str | None = None,
) -> Recipe:
    return Recipe(
        task_id=f"unit-{task_type.value}",
        seed_id="seed",
        domain="testing",
        title="A hand-made task",
        entity="row",
        task_type=task_type,
        metric=metric or METRIC[task_type],
        id_column="id",
        features=features or FEATURES,
        targets=TARGETS[task_type],
        rule=RuleSpec(family="linear", signal_strength=1.0),
        noise=NoiseSpec(),
        n_train=n_train,
        n_test=n_test,
        rng_seed=7,
    )


def _features(recipe: Recipe, n: int, rng: np.random.Generator) -> dict[str, pl.Series]:
    out = {}
    for f in recipe.features:
        if f.kind in ("numeric", "integer"):
            values = rng.uniform(f.low, f.high, n)
            series = pl.Series(f.name, values.round() if f.kind == "integer" else values)
            if f.kind == "integer":
                series = series.cast(pl.Int64)
        elif f.kind == "categorical":
            series = pl.Series(f.name, [(f.categories or [])[i % 3] for i in range(n)])
        else:
            series = pl.Series(f.name, [i % 2 == 0 for i in range(n)])
        nulls = int(f.missing_rate * n)
        out[f.name] = series.scatter(list(range(0, 2 * nulls, 2)), None) if nulls else series
    return out


def _targets(recipe: Recipe, n: int, rng: np.random.Generator) -> dict[str, pl.Series]:
    out = {}
    for t in recipe.targets:
        if t.kind == "binary":
            out[t.name] = pl.Series(t.name, rng.permutation(np.arange(n) % 3 == 0).astype(int))
        elif t.kind == "continuous":
            out[t.name] = pl.Series(t.name, np.abs(rng.normal(t.center, t.scale, n)))
        else:
            out[t.name] = pl.Series(t.name, [(t.classes or [])[i % 3] for i in range(n)])
    return out


def _submission(recipe: Recipe, ids: list[str]) -> pl.DataFrame:
    columns: dict[str, object] = {recipe.id_column: ids}
    for name in recipe.submission_columns()[1:]:
        if recipe.submission_kind == SubmissionKind.CLASS_PROBABILITIES:
            columns[name] = [1 / 3] * len(ids)
        else:
            columns[name] = [0.5] * len(ids)
    return pl.DataFrame(columns)


def make_data(recipe: Recipe) -> TaskData:
    rng = np.random.default_rng(0)
    train_ids = [f"tr-{i:04d}" for i in range(recipe.n_train)]
    test_ids = [f"te-{i:04d}" for i in range(recipe.n_test)]
    train = pl.DataFrame(
        {
            "id": train_ids,
            **_features(recipe, recipe.n_train, rng),
            **_targets(recipe, recipe.n_train, rng),
        }
    )
    test = pl.DataFrame({"id": test_ids, **_features(recipe, recipe.n_test, rng)})
    answers = pl.DataFrame({"id": test_ids, **_targets(recipe, recipe.n_test, rng)})
    submission = _submission(recipe, test_ids)
    return TaskData(train, test, answers, submission, submission)


def replace(data: TaskData, **tables: pl.DataFrame) -> TaskData:
    return TaskData(**{**data.__dict__, **tables})


@pytest.mark.parametrize("task_type", list(TARGETS))
def test_valid_data_passes(task_type: TaskType) -> None:
    recipe = make_recipe(task_type)
    report = validate_task_data(recipe, make_data(recipe))
    assert report.failed == []
    assert report.success
    assert report.evaluated > 20


def test_string_binary_labels_pass() -> None:
    recipe = make_recipe()
    data = make_data(recipe)
    train = data.train.with_columns(pl.col("churn").cast(pl.String))
    answers = data.answers.with_columns(pl.col("churn").cast(pl.String))
    assert validate_task_data(recipe, replace(data, train=train, answers=answers)).success


def _dup_id(d: TaskData) -> TaskData:
    ids = d.train["id"].scatter(1, d.train["id"][0])
    return replace(d, train=d.train.with_columns(ids))


def _shared_id(d: TaskData) -> TaskData:
    shared = d.test["id"][0]
    return replace(d, train=d.train.with_columns(d.train["id"].scatter(0, shared)))


def _nulls(column: str, share: float) -> Callable[[TaskData], TaskData]:
    def broken(d: TaskData) -> TaskData:
        n = int(share * d.test.height)
        return replace(d, test=d.test.with_columns(d.test[column].scatter(list(range(n)), None)))

    return broken


def _other_answer_id(d: TaskData) -> TaskData:
    return replace(d, answers=d.answers.with_columns(d.answers["id"].scatter(3, "nowhere")))


BREAKS: dict[str, tuple[Callable[[TaskData], TaskData], str]] = {
    "duplicate id": (_dup_id, "train.expect_column_values_to_be_unique(id)"),
    "id in train and test": (_shared_id, "train+test.expect_column_values_to_be_unique(id)"),
    "missing column": (
        lambda d: replace(d, test=d.test.drop("rooms")),
        "test.expect_table_columns_to_match_ordered_list()",
    ),
    "extra column": (
        lambda d: replace(d, train=d.train.with_columns(leak=pl.lit(1))),
        "train.expect_table_columns_to_match_ordered_list()",
    ),
    "columns out of order": (
        lambda d: replace(d, train=d.train.select("id", "rooms", "age", "color", "owner", "churn")),
        "train.expect_table_columns_to_match_ordered_list()",
    ),
    "wrong row count": (
        lambda d: replace(d, train=d.train.head(-1)),
        "train.expect_table_row_count_to_equal(): observed 119, expected 120",
    ),
    "unexpected category": (
        lambda d: replace(d, train=d.train.with_columns(d.train["color"].scatter(5, "mauve"))),
        "train.expect_column_values_to_be_in_set(color)",
    ),
    "nulls where the recipe has none": (
        _nulls("rooms", 0.05),
        "test.expect_column_values_to_not_be_null(rooms)",
    ),
    "null rate far above recipe": (
        _nulls("age", 0.5),
        "test.expect_column_values_to_not_be_null(age)",
    ),
    "numeric far out of range": (
        lambda d: replace(d, test=d.test.with_columns(pl.col("age") * 100)),
        "test.expect_column_values_to_be_between(age)",
    ),
    "non-boolean flag": (
        lambda d: replace(d, train=d.train.with_columns(pl.col("owner").cast(pl.Int64))),
        "train.expect_column_values_to_be_in_set(owner)",
    ),
    "no positive in train": (
        lambda d: replace(d, train=d.train.with_columns(churn=pl.lit(0))),
        "train.expect_column_distinct_values_to_contain_set(churn): observed missing [1]",
    ),
    "target outside 0/1": (
        lambda d: replace(d, answers=d.answers.with_columns(churn=pl.lit(2))),
        "answers.expect_column_values_to_be_in_set(churn)",
    ),
    "answers ids are not test ids": (
        _other_answer_id,
        "answers.expect_column_values_to_be_in_set(id)",
    ),
    "sample submission wrong column": (
        lambda d: replace(d, sample_submission=d.sample_submission.rename({"churn": "label"})),
        "sample_submission.expect_table_columns_to_match_ordered_list()",
    ),
    "sample submission probability above 1": (
        lambda d: replace(d, sample_submission=d.sample_submission.with_columns(churn=pl.lit(3))),
        "sample_submission.expect_column_values_to_be_between(churn)",
    ),
    "sample submission short": (
        lambda d: replace(d, sample_submission=d.sample_submission.head(10)),
        "sample_submission.expect_table_row_count_to_equal()",
    ),
}


@pytest.mark.parametrize("name", list(BREAKS))
def test_each_break_is_named(name: str) -> None:
    breaker, expected = BREAKS[name]
    recipe = make_recipe()
    report = validate_task_data(recipe, breaker(make_data(recipe)))
    assert not report.success
    assert any(line.startswith(expected) for line in report.failed), report.failed


def test_positive_rate_bounds() -> None:
    recipe = make_recipe()
    data = make_data(recipe)
    rare = pl.Series("churn", [1] + [0] * (recipe.n_train - 1))
    report = validate_task_data(recipe, replace(data, train=data.train.with_columns(rare)))
    assert [line for line in report.failed if "positive rate" in line] == [
        "train.expect_column_values_to_be_in_set(churn): observed 119 of 120 rows unexpected "
        "(99.2%), e.g. [0, 0, 0, 0, 0] (mostly=0.02) [positive rate >= 0.02]"
    ]


def test_class_missing_from_train() -> None:
    recipe = make_recipe(TaskType.MULTICLASS)
    data = make_data(recipe)
    train = data.train.with_columns(pl.col("species").replace("cat", "bee"))
    report = validate_task_data(recipe, replace(data, train=train))
    assert report.failed == [
        "train.expect_column_distinct_values_to_contain_set(species): observed missing ['cat']"
    ]


def test_class_probability_columns() -> None:
    recipe = make_recipe(TaskType.MULTICLASS)
    data = make_data(recipe)
    wrong = data.sample_submission.rename({"cat": "dog"})
    report = validate_task_data(recipe, replace(data, sample_submission=wrong))
    assert report.failed[0].startswith(
        "sample_submission.expect_table_columns_to_match_ordered_list(): observed "
        "['id', 'ant', 'bee', 'dog'], expected ['id', 'ant', 'bee', 'cat']"
    )


def test_regression_target_checks() -> None:
    recipe = make_recipe(TaskType.REGRESSION)
    data = make_data(recipe)
    train = data.train.with_columns(price=pl.lit(-5.0))
    report = validate_task_data(recipe, replace(data, train=train))
    assert report.failed == [
        "train.expect_column_values_to_be_between(price): observed 120 of 120 rows unexpected "
        "(100.0%), e.g. [-5, -5, -5, -5, -5]",
        "train.expect_column_stdev_to_be_between(price): observed 0, expected > 0",
    ]


def test_report_is_json_and_deterministic() -> None:
    recipe = make_recipe()
    data = _nulls("age", 0.5)(_dup_id(make_data(recipe)))
    first = validate_task_data(recipe, data).as_dict()
    second = validate_task_data(recipe, data).as_dict()
    assert first == second
    assert json.loads(json.dumps(first)) == first
    assert set(first) == {"success", "evaluated", "failed"}
    assert first["success"] is False


def test_concurrent_calls_agree() -> None:
    recipes = [make_recipe(), make_recipe(TaskType.MULTICLASS)]
    inputs = [(r, make_data(r)) for r in recipes] * 2
    with ThreadPoolExecutor(max_workers=2) as pool:
        reports = list(pool.map(lambda args: validate_task_data(*args), inputs))
    assert all(isinstance(r, ExpectationReport) and r.success for r in reports)
    assert reports[0] == reports[2] and reports[1] == reports[3]


# --- declared domain constraints and hard bounds ----------------------------------------

CONSTRAINED = [
    *FEATURES,
    FeatureColumn(
        name="guests", kind="integer", description="guests", role="distractor", low=0, high=5
    ),
    FeatureColumn(
        name="fee",
        kind="numeric",
        description="fee",
        role="distractor",
        low=0,
        high=40,
        minimum=0,
        maximum=50,
    ),
]
FACTS = [
    Constraint(kind="at_most", column="guests", bound="rooms", mode="share"),
    Constraint(kind="equals_when", column="fee", when="owner", when_value=True, value=0),
]


def _constrained_data(recipe: Recipe) -> TaskData:
    """Hand-made data obeying the facts: guests never exceed rooms, owners pay no fee."""
    data = make_data(recipe)

    def obey(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.with_columns(
            pl.min_horizontal("guests", "rooms").alias("guests"),
            pl.when(pl.col("owner")).then(0.0).otherwise(pl.col("fee")).alias("fee"),
        )

    return replace(data, train=obey(data.train), test=obey(data.test))


def test_domain_constraints_pass_when_obeyed_and_name_each_violation() -> None:
    recipe = make_recipe(features=CONSTRAINED).model_copy(update={"constraints": FACTS})
    Recipe.model_validate(recipe.model_dump())  # the copy is a valid recipe
    data = _constrained_data(recipe)
    assert validate_task_data(recipe, data).success

    broken = data.train.with_columns(
        pl.when(pl.int_range(pl.len()) < 3)
        .then(pl.col("rooms") + 1)
        .otherwise("guests")
        .alias("guests"),
        pl.when(pl.col("owner") & (pl.int_range(pl.len()) < 30))
        .then(5.0)
        .otherwise("fee")
        .alias("fee"),
    )
    above = data.test.with_columns(pl.lit(60.0).alias("fee"))
    report = validate_task_data(recipe, replace(data, train=broken, test=above))
    assert report.failed == [
        "train.expect_column_pair_values_a_to_be_greater_than_b(rooms, guests): observed 3 of "
        "120 rows unexpected (2.5%), e.g. [[3, 4], [3, 4], [6, 7]] [guests <= rooms]",
        "train.expect_column_values_to_be_in_set(fee): observed 9 of 54 rows unexpected "
        "(16.7%), e.g. [5, 5, 5, 5, 5] [fee == 0 when owner is True]",
        "test.expect_column_values_to_be_between(fee): observed 80 of 80 rows unexpected "
        "(100.0%), e.g. [60, 60, 60, 60, 60] [within its hard bounds]",
        "test.expect_column_values_to_be_in_set(fee): observed 36 of 36 rows unexpected "
        "(100.0%), e.g. [60, 60, 60, 60, 60] [fee == 0 when owner is True]",
    ]
