"""Synthesis: recipes from the offline agent become deterministic, well-formed task tables."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from pydantic import ValidationError
from sandforge.agents.providers import get_provider
from sandforge.agents.recipe import Recipe
from sandforge.agents.stages import Design, ExtractDna, Mutate
from sandforge.seeds.card import SeedCard
from sandforge.seeds.registry import load_all
from sandforge.synthesis.data import TaskData
from sandforge.synthesis.stage import Synthesize
from sandforge.synthesis.synthesize import synthesize
from sandforge.validators.metrics import GENERATABLE_TASK_TYPES, SubmissionKind, TaskType

from sandforge.bundle_files import PRIVATE, PUBLIC, csv_bytes
from sandforge.pipeline import Candidate

RNG_SEEDS = (11, 2024, 987_654_321)
TABLES = ("train", "test", "answers", "sample_submission", "oracle_submission")


def _cards_by_type() -> dict[TaskType, SeedCard]:
    cards: dict[TaskType, SeedCard] = {}
    for card in load_all():
        if card.generatable:
            cards.setdefault(card.task_type, card)
    return cards


CARDS = _cards_by_type()
CASES = [(t, s) for t in sorted(CARDS) for s in RNG_SEEDS]
CASE_IDS = [f"{t.value}-{s}" for t, s in CASES]


def make_recipe(card: SeedCard, rng_seed: int) -> Recipe:
    """The offline agent path: extractor -> strategist -> designer."""
    provider = get_provider()
    dna = provider.extractor.extract(card)
    plan = provider.strategist.mutate(dna, rng_seed, frozenset())
    return provider.designer.design(dna, plan, rng_seed)


def with_changes(recipe: Recipe, **changes: Any) -> Recipe:
    """A validated copy: nested dicts replace the matching part of the recipe."""
    data = recipe.model_dump()
    for key, value in changes.items():
        data[key] = {**data[key], **value} if isinstance(value, dict) else value
    return Recipe.model_validate(data)


def table_bytes(data: TaskData) -> dict[str, bytes]:
    return {name: csv_bytes(getattr(data, name)) for name in TABLES}


@pytest.fixture(scope="module")
def built() -> dict[tuple[TaskType, int], tuple[Recipe, TaskData]]:
    out = {}
    for task_type, seed in CASES:
        recipe = make_recipe(CARDS[task_type], seed)
        out[(task_type, seed)] = (recipe, synthesize(recipe))
    return out


def _case(built, task_type: TaskType, seed: int) -> tuple[Recipe, TaskData]:
    return built[(task_type, seed)]


def test_every_generatable_task_type_is_covered() -> None:
    assert set(CARDS) == set(GENERATABLE_TASK_TYPES)
    for task_type, card in CARDS.items():
        assert make_recipe(card, RNG_SEEDS[0]).task_type == task_type


# --- determinism -------------------------------------------------------------------------


@pytest.mark.parametrize(("task_type", "seed"), CASES, ids=CASE_IDS)
def test_same_recipe_gives_byte_identical_tables(built, task_type: TaskType, seed: int) -> None:
    recipe, data = _case(built, task_type, seed)
    assert table_bytes(synthesize(recipe)) == table_bytes(data)


@pytest.mark.parametrize(("task_type", "seed"), CASES, ids=CASE_IDS)
def test_rebuilt_recipe_reproduces_the_bytes(built, task_type: TaskType, seed: int) -> None:
    """A fresh agent run, and the recipe read back from its manifest JSON, give the same data."""
    recipe, data = _case(built, task_type, seed)
    again = make_recipe(CARDS[task_type], seed)
    assert again == recipe
    assert again.task_id == recipe.task_id
    from_json = Recipe.model_validate_json(recipe.model_dump_json())
    assert table_bytes(synthesize(again)) == table_bytes(data)
    assert table_bytes(synthesize(from_json)) == table_bytes(data)


@pytest.mark.parametrize(("task_type", "seed"), CASES, ids=CASE_IDS)
def test_different_rng_seed_gives_different_data(built, task_type: TaskType, seed: int) -> None:
    recipe, data = _case(built, task_type, seed)
    other = synthesize(with_changes(recipe, rng_seed=recipe.rng_seed + 1))
    assert other.train.columns == data.train.columns
    for name in ("train", "test", "answers"):
        assert csv_bytes(getattr(other, name)) != csv_bytes(getattr(data, name)), name
    id_column = recipe.id_column
    for name in ("train", "test"):
        for column in getattr(data, name).columns:
            if column == id_column:
                continue
            assert not getattr(data, name)[column].equals(getattr(other, name)[column]), column


def test_distinct_agent_seeds_give_distinct_tasks(built) -> None:
    for task_type in CARDS:
        train_bytes = {csv_bytes(built[(task_type, s)][1].train) for s in RNG_SEEDS}
        task_ids = {built[(task_type, s)][0].task_id for s in RNG_SEEDS}
        assert len(train_bytes) == len(RNG_SEEDS), task_type
        assert len(task_ids) == len(RNG_SEEDS), task_type


# --- shape of the tables -----------------------------------------------------------------


@pytest.mark.parametrize(("task_type", "seed"), CASES, ids=CASE_IDS)
def test_row_counts_follow_the_recipe(built, task_type: TaskType, seed: int) -> None:
    recipe, data = _case(built, task_type, seed)
    assert 50 <= recipe.n_train <= 200
    assert data.train.height == recipe.n_train
    assert data.test.height == recipe.n_test
    assert data.answers.height == recipe.n_test
    assert data.sample_submission.height == recipe.n_test
    assert data.oracle_submission.height == recipe.n_test


@pytest.mark.parametrize(("task_type", "seed"), CASES, ids=CASE_IDS)
def test_ids_unique_and_disjoint(built, task_type: TaskType, seed: int) -> None:
    recipe, data = _case(built, task_type, seed)
    train_ids = data.train[recipe.id_column].to_list()
    test_ids = data.test[recipe.id_column].to_list()
    assert len(set(train_ids)) == len(train_ids)
    assert len(set(test_ids)) == len(test_ids)
    assert not set(train_ids) & set(test_ids)
    assert data.train[recipe.id_column].null_count() == 0
    assert data.test[recipe.id_column].null_count() == 0


@pytest.mark.parametrize(("task_type", "seed"), CASES, ids=CASE_IDS)
def test_answers_and_submissions_cover_exactly_the_test_ids(
    built, task_type: TaskType, seed: int
) -> None:
    recipe, data = _case(built, task_type, seed)
    test_ids = data.test[recipe.id_column].to_list()
    for frame in (data.answers, data.sample_submission, data.oracle_submission):
        assert frame[recipe.id_column].to_list() == test_ids


@pytest.mark.parametrize(("task_type", "seed"), CASES, ids=CASE_IDS)
def test_columns_of_every_table(built, task_type: TaskType, seed: int) -> None:
    recipe, data = _case(built, task_type, seed)
    features = [f.name for f in recipe.features] + [c.name for c in recipe.quirk_columns()]
    targets = [t.name for t in recipe.targets]
    assert data.train.columns == [recipe.id_column, *features, *targets]
    assert data.test.columns == [recipe.id_column, *features]
    assert data.answers.columns == [recipe.id_column, *targets]
    assert data.sample_submission.columns == recipe.submission_columns()
    assert data.oracle_submission.columns == recipe.submission_columns()
    assert recipe.submission_columns()[0] == recipe.id_column


@pytest.mark.parametrize(("task_type", "seed"), CASES, ids=CASE_IDS)
def test_target_values_match_their_kind(built, task_type: TaskType, seed: int) -> None:
    recipe, data = _case(built, task_type, seed)
    for target in recipe.targets:
        for frame in (data.train, data.answers):
            column = frame[target.name]
            assert column.null_count() == 0
            if target.kind == "binary":
                assert set(column.to_list()) <= {0, 1}
            elif target.kind in ("categorical", "ordinal"):
                assert set(column.to_list()) <= set(target.classes or [])
            elif target.nonnegative:
                assert column.min() >= 0
        if target.kind != "continuous":  # not a constant label
            labels = pl.concat([data.train[target.name], data.answers[target.name]])
            assert labels.n_unique() >= 2


@pytest.mark.parametrize(("task_type", "seed"), CASES, ids=CASE_IDS)
def test_feature_values_match_their_kind(built, task_type: TaskType, seed: int) -> None:
    recipe, data = _case(built, task_type, seed)
    full = pl.concat([data.train.drop([t.name for t in recipe.targets]), data.test])
    for feature in recipe.features:
        column = full[feature.name]
        if feature.missing_rate == 0:
            assert column.null_count() == 0, feature.name
        present = column.drop_nulls()
        assert present.len() > 0
        if feature.kind == "categorical":
            assert set(present.to_list()) <= set(feature.categories or [])
        elif feature.kind == "boolean":
            assert column.dtype == pl.Boolean
        elif feature.kind == "integer":
            assert column.dtype == pl.Int64
        else:
            assert column.dtype == pl.Float64
        if feature.kind in ("numeric", "integer"):
            # a small integer scale (1..4 locomotives) has only its few values
            assert present.n_unique() > min(5, feature.high - feature.low), feature.name
            if feature.minimum is not None or feature.maximum is not None:
                assert present.min() >= (feature.minimum or -float("inf")), feature.name
                assert present.max() <= (feature.maximum or float("inf")), feature.name
            if feature.low is not None and feature.low >= 0:
                assert present.min() >= 0, feature.name


@pytest.mark.parametrize(("task_type", "seed"), CASES, ids=CASE_IDS)
def test_sample_submission_is_an_uninformative_constant(
    built, task_type: TaskType, seed: int
) -> None:
    recipe, data = _case(built, task_type, seed)
    values = data.sample_submission.drop(recipe.id_column)
    for column in values.columns:
        assert values[column].n_unique() == 1, column
    if recipe.submission_kind == SubmissionKind.CLASS_PROBABILITIES:
        row = values.row(0)
        assert sum(row) == pytest.approx(1.0, abs=1e-5)
    elif recipe.submission_kind == SubmissionKind.PROBABILITY:
        assert set(values.row(0)) == {0.5}


@pytest.mark.parametrize(("task_type", "seed"), CASES, ids=CASE_IDS)
def test_oracle_probabilities_are_probabilities(built, task_type: TaskType, seed: int) -> None:
    recipe, data = _case(built, task_type, seed)
    values = data.oracle_submission.drop(recipe.id_column)
    if recipe.submission_kind in (SubmissionKind.PROBABILITY, SubmissionKind.CLASS_PROBABILITIES):
        assert values.min_horizontal().min() >= 0.0
        assert values.max_horizontal().max() <= 1.0
    if recipe.submission_kind == SubmissionKind.CLASS_PROBABILITIES:
        sums = values.sum_horizontal()
        assert sums.min() == pytest.approx(1.0) and sums.max() == pytest.approx(1.0)


# --- noise settings ----------------------------------------------------------------------


def test_outliers_corrupt_training_targets_only(built) -> None:
    recipe, _ = _case(built, TaskType.REGRESSION, RNG_SEEDS[0])
    (target,) = recipe.targets
    clean = synthesize(with_changes(recipe, noise={"outlier_rate": 0.0}))
    dirty = synthesize(with_changes(recipe, noise={"outlier_rate": 0.1}))
    assert csv_bytes(dirty.answers) == csv_bytes(clean.answers)
    diff = (dirty.train[target.name] - clean.train[target.name]).abs()
    changed = diff.filter(diff > 0)
    assert 0 < changed.len() < recipe.n_train // 2
    assert changed.min() >= 4 * target.scale - 10**-target.decimals


def test_covariate_shift_moves_only_the_test_rows_of_the_shift_feature(built) -> None:
    recipe, _ = _case(built, TaskType.REGRESSION, RNG_SEEDS[0])
    constrained = {c.column for c in recipe.constraints}  # rebuilt from their bounds
    name = next(
        f.name
        for f in recipe.features
        if f.role != "correlated" and f.kind in ("numeric", "integer") and f.name not in constrained
    )
    feature = next(f for f in recipe.features if f.name == name)
    base = synthesize(with_changes(recipe, noise={"shift": 0.0, "shift_feature": None}))
    moved = synthesize(with_changes(recipe, noise={"shift": 1.5, "shift_feature": name}))
    assert base.train[name].equals(moved.train[name])
    step = 1.5 * (feature.high - feature.low) / 3.92
    delta = (moved.test[name] - base.test[name]).drop_nulls()
    assert 0.8 * step < delta.mean() <= 1.01 * step
    assert delta.min() >= -(10**-feature.decimals)


# --- the pipeline stage ------------------------------------------------------------------


def test_synthesize_stage_writes_the_data_files(tmp_path: Path) -> None:
    card = CARDS[TaskType.MULTICLASS]
    candidate = Candidate(
        card=card, provider=get_provider(), attempt=0, rng_seed=RNG_SEEDS[1], workdir=tmp_path
    )
    for stage in (ExtractDna(), Mutate(), Design(), Synthesize()):
        candidate = stage(candidate)
    assert candidate.rejection is None
    recipe, data = candidate.recipe, candidate.data
    assert recipe is not None and data is not None
    assert set(candidate.files) == {
        f"{PUBLIC}/train.csv",
        f"{PUBLIC}/test.csv",
        f"{PUBLIC}/sample_submission.csv",
        f"{PRIVATE}/answer.csv",
    }
    assert candidate.files[f"{PUBLIC}/train.csv"] == csv_bytes(data.train)
    assert candidate.files[f"{PRIVATE}/answer.csv"] == csv_bytes(data.answers)
    test_csv = pl.read_csv(io.BytesIO(candidate.files[f"{PUBLIC}/test.csv"]))
    sample_csv = pl.read_csv(io.BytesIO(candidate.files[f"{PUBLIC}/sample_submission.csv"]))
    targets = {t.name for t in recipe.targets}
    assert not targets & set(test_csv.columns)
    assert sample_csv.columns == recipe.submission_columns()
    assert sample_csv[recipe.id_column].to_list() == test_csv[recipe.id_column].to_list()
    assert test_csv.height == recipe.n_test


# --- recipe validation -------------------------------------------------------------------


def _first(data: dict[str, Any], kind: tuple[str, ...]) -> dict[str, Any]:
    return next(f for f in data["features"] if f["kind"] in kind)


def _rmsle_on_signed_target(d: dict[str, Any]) -> str:
    d["metric"] = "rmsle"
    d["targets"][0]["nonnegative"] = False
    return d["targets"][0]["name"]


def _one_category(d: dict[str, Any]) -> str:
    f = _first(d, ("numeric", "integer"))
    f.update(kind="categorical", categories=["only"], low=None, high=None)
    return f["name"]


def _repeated_category(d: dict[str, Any]) -> str:
    f = _first(d, ("numeric", "integer"))
    f.update(kind="categorical", categories=["a", "a", "b"], low=None, high=None)
    return f["name"]


def _low_equals_high(d: dict[str, Any]) -> str:
    f = _first(d, ("numeric", "integer"))
    f["high"] = f["low"]
    return f["name"]


def _low_above_high(d: dict[str, Any]) -> str:
    f = _first(d, ("numeric", "integer"))
    f["low"], f["high"] = f["high"], f["low"]
    return f["name"]


def _numeric_without_range(d: dict[str, Any]) -> str:
    f = _first(d, ("numeric", "integer"))
    f["high"] = None
    return f["name"]


def _correlated_without_source(d: dict[str, Any]) -> str:
    f = _first(d, ("numeric", "integer"))
    f.update(role="correlated", correlated_with=None)
    return f["name"]


def _correlated_with_categorical(d: dict[str, Any]) -> str:
    source = _first(d, ("categorical",))
    f = next(f for f in d["features"] if f["kind"] in ("numeric", "integer") and f is not source)
    f.update(role="correlated", correlated_with=source["name"])
    return f["name"]


def _no_signal(d: dict[str, Any]) -> str:
    for f in d["features"]:
        if f["role"] == "signal":
            f["role"] = "distractor"
    d["derived"] = []  # a derived quantity the rule reads is signal too
    d["rule"]["varying_slopes"] = []
    return "signal"


def _unknown_shift_feature(d: dict[str, Any]) -> str:
    d["noise"].update(shift=0.5, shift_feature="no_such_column")
    return "no_such_column"


def _duplicate_column(d: dict[str, Any]) -> str:
    d["features"][1]["name"] = d["features"][0]["name"]
    return d["features"][0]["name"]


def _metric_for_other_task(d: dict[str, Any]) -> str:
    d["metric"] = "roc_auc"
    return "roc_auc"


def _target_of_wrong_kind(d: dict[str, Any]) -> str:
    d["targets"][0]["kind"] = "binary"
    return d["targets"][0]["name"]


VALIDATION_CASES: list[tuple[str, Callable[[dict[str, Any]], str], str]] = [
    ("rmsle-signed-target", _rmsle_on_signed_target, "needs nonnegative targets"),
    ("one-category", _one_category, "categorical needs >= 2 distinct categories"),
    ("repeated-category", _repeated_category, "categorical needs >= 2 distinct categories"),
    ("low-equals-high", _low_equals_high, "numeric needs low < high"),
    ("low-above-high", _low_above_high, "numeric needs low < high"),
    ("no-high", _numeric_without_range, "numeric needs low < high"),
    ("correlated-no-source", _correlated_without_source, "correlated role needs"),
    ("correlated-categorical", _correlated_with_categorical, "must name a numeric feature"),
    ("no-signal", _no_signal, "at least one feature must carry signal"),
    ("unknown-shift-feature", _unknown_shift_feature, "is not a feature"),
    ("duplicate-column", _duplicate_column, "duplicate column names"),
    ("metric-wrong-task", _metric_for_other_task, "does not fit 'regression'"),
    ("target-wrong-kind", _target_of_wrong_kind, "regression needs continuous"),
]


@pytest.mark.parametrize(
    ("mutate", "problem"),
    [case[1:] for case in VALIDATION_CASES],
    ids=[case[0] for case in VALIDATION_CASES],
)
def test_invalid_recipe_names_the_column_and_problem(
    built, mutate: Callable[[dict[str, Any]], str], problem: str
) -> None:
    recipe, _ = _case(built, TaskType.REGRESSION, RNG_SEEDS[0])
    data = recipe.model_dump()
    if not any(f["kind"] == "categorical" for f in data["features"]):
        pytest.fail("the regression recipe needs a categorical feature for these cases")
    name = mutate(data)
    with pytest.raises(ValidationError) as info:
        Recipe.model_validate(data)
    message = str(info.value)
    assert name in message
    assert problem in message


def test_valid_recipe_dump_round_trips(built) -> None:
    """The mutations above fail because of the mutation, not because the base is invalid."""
    for recipe, _ in built.values():
        assert Recipe.model_validate(recipe.model_dump()) == recipe


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"n_train": 49}, "n_train"),
        ({"n_train": 201}, "n_train"),
        ({"n_test": 49}, "n_test"),
        ({"targets": "single-class-list"}, "needs >= 3 classes"),
        ({"targets": "one-of-several"}, "takes several target(s)"),
    ],
    ids=["train-too-small", "train-too-large", "test-too-small", "two-classes", "multi-one"],
)
def test_invalid_sizes_and_target_lists(built, changes: dict[str, Any], problem: str) -> None:
    if changes.get("targets") == "single-class-list":
        recipe, _ = _case(built, TaskType.MULTICLASS, RNG_SEEDS[0])
        data = recipe.model_dump()
        data["targets"][0]["classes"] = data["targets"][0]["classes"][:2]
        problem = f"target {data['targets'][0]['name']}: {problem}"
    elif changes.get("targets") == "one-of-several":
        recipe, _ = _case(built, TaskType.MULTILABEL, RNG_SEEDS[0])
        data = recipe.model_dump()
        data["targets"] = data["targets"][:1]
    else:
        recipe, _ = _case(built, TaskType.BINARY, RNG_SEEDS[0])
        data = {**recipe.model_dump(), **changes}
    with pytest.raises(ValidationError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        Recipe.model_validate(data)
