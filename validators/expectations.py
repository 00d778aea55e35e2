"""Great Expectations checks of one task's data, derived from its recipe.

Synthesis can drift from what the recipe promises (a lost column, duplicated ids, a class that
never appears in train); a bundle must not ship then. Every expectation is derived from the
recipe alone, so the suite is the recipe's contract, and the report is deterministic so it can
sit in the bundle manifest. GX is imported lazily (it costs ~4 s) and one ephemeral context is
kept per process behind a lock.
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import polars as pl
from sandforge.agents.recipe import FeatureColumn, Recipe, TargetColumn
from sandforge.synthesis.data import TaskData
from sandforge.validators.metrics import SubmissionKind

if TYPE_CHECKING:
    from great_expectations.core import ExpectationValidationResult
    from great_expectations.core.batch_definition import BatchDefinition
    from great_expectations.datasource.fluent.interfaces import Batch
    from great_expectations.expectations import Expectation

# Sampling noise on top of a recipe's missing_rate before a null rate counts as broken.
NULL_RATE_TOLERANCE = 0.1
# Numeric values may stray this many typical widths (high - low) beyond [low, high].
RANGE_WIDTHS = 3.0
# Share of numeric values that must lie in the widened range, before outliers are subtracted.
IN_RANGE_SHARE = 0.95
# Binary and multilabel targets: the positive rate must lie in [floor, 1 - floor].
POSITIVE_RATE_FLOOR = 0.02
# Row-level failures quote at most this many offending values.
SHOWN_VALUES = 5

TABLES = ("train", "test", "answers", "sample_submission", "train+test")

_LOCK = threading.Lock()
_BATCHES: dict[str, BatchDefinition] = {}  # table -> whole-dataframe batch definition


@dataclass(frozen=True)
class ExpectationReport:
    """Outcome of a task's suite; `failed` holds one readable line per failed expectation."""

    success: bool
    evaluated: int
    failed: list[str]

    def as_dict(self) -> dict[str, Any]:
        """JSON-able and free of run ids or times, so equal data gives an equal manifest."""
        return {"success": self.success, "evaluated": self.evaluated, "failed": list(self.failed)}


def validate_task_data(recipe: Recipe, data: TaskData) -> ExpectationReport:
    """Run the recipe-derived suite over train, test, answers, sample submission and their ids."""
    frames = {
        "train": data.train,
        "test": data.test,
        "answers": data.answers,
        "sample_submission": data.sample_submission,
        "train+test": _joint_ids(recipe.id_column, data),
    }
    with _LOCK:
        suites = _suites(recipe, frames)
        evaluated, failed = 0, []
        for table in TABLES:
            # polars nulls become None/NaN in pandas, both of which GX counts as null
            batch = _batch_definition(table).get_batch(
                batch_parameters={"dataframe": frames[table].to_pandas()}
            )
            verdicts = _run(batch, suites[table], "BOOLEAN_ONLY")
            evaluated += len(verdicts)
            broken = [suites[table][_order(r)] for r in verdicts if not r.success]
            if broken:
                failed += [_describe(table, r) for r in _run(batch, broken, "SUMMARY")]
    return ExpectationReport(success=not failed, evaluated=evaluated, failed=failed)


def _run(
    batch: Batch, expectations: list[Expectation], result_format: str
) -> list[ExpectationValidationResult]:
    """Results in suite order. A cheap BOOLEAN_ONLY pass first: GX spends ~5 ms per
    expectation there and ~10 ms with SUMMARY, which only the failed ones need."""
    import great_expectations as gx

    suite = gx.ExpectationSuite(name="sandforge", expectations=expectations)
    return sorted(batch.validate(suite, result_format=result_format).results, key=_order)


def _order(result: ExpectationValidationResult) -> int:
    return result.expectation_config.meta["order"]


def _joint_ids(id_column: str, data: TaskData) -> pl.DataFrame:
    """Train ids followed by test ids: unique there means unique per table and disjoint."""
    parts = [
        f.select(pl.col(id_column).cast(pl.String))
        for f in (data.train, data.test)
        if id_column in f.columns
    ]
    return pl.concat(parts) if parts else pl.DataFrame(schema={id_column: pl.String})


def _batch_definition(table: str) -> BatchDefinition:
    """One ephemeral context, pandas source and asset per table, built once and reused."""
    if not _BATCHES:
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        # This GX module pins its logger to INFO to announce a temp docs folder: not news.
        logging.getLogger("great_expectations.data_context.types.base").setLevel(logging.WARNING)
        context = gx.get_context(mode="ephemeral")
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
        source = context.data_sources.add_pandas(name="sandforge")
        for name in TABLES:
            asset = source.add_dataframe_asset(name=name)
            _BATCHES[name] = asset.add_batch_definition_whole_dataframe("whole")
    return _BATCHES[table]


def _suites(recipe: Recipe, frames: dict[str, pl.DataFrame]) -> dict[str, list[Expectation]]:
    """Expectations per table; `frames` only decides how labels are typed (0/1 vs "0"/"1")."""
    import great_expectations.expectations as gxe
    from great_expectations.expectations.row_conditions import Column

    idc = recipe.id_column
    test_ids = _values(frames["test"], idc)
    features = [f.name for f in recipe.features] + [c.name for c in recipe.quirk_columns()]
    targets = [t.name for t in recipe.targets]

    def ids(rows: int) -> list[Expectation]:
        return [
            gxe.ExpectTableRowCountToEqual(value=rows),
            gxe.ExpectColumnValuesToNotBeNull(column=idc),
            gxe.ExpectColumnValuesToBeUnique(column=idc),
        ]

    def of_test(table: str) -> list[Expectation]:
        return [
            gxe.ExpectColumnValuesToBeInSet(
                column=idc, value_set=test_ids, description=f"{table} ids are test ids"
            )
        ]

    def feature(frame: pl.DataFrame, f: FeatureColumn) -> list[Expectation]:
        allowed = f.missing_rate + NULL_RATE_TOLERANCE if f.missing_rate > 0 else 0.0
        out = [gxe.ExpectColumnValuesToNotBeNull(column=f.name, mostly=max(0.0, 1.0 - allowed))]
        if f.kind in ("numeric", "integer"):
            assert f.low is not None and f.high is not None  # FeatureColumn guarantees it
            margin = RANGE_WIDTHS * (f.high - f.low)
            out.append(
                gxe.ExpectColumnValuesToBeBetween(
                    column=f.name,
                    min_value=f.low - margin,
                    max_value=f.high + margin,
                    mostly=IN_RANGE_SHARE - recipe.noise.outlier_rate,
                )
            )
            if f.minimum is not None or f.maximum is not None:
                out.append(
                    gxe.ExpectColumnValuesToBeBetween(
                        column=f.name,
                        min_value=f.minimum,
                        max_value=f.maximum,
                        description="within its hard bounds",
                    )
                )
        else:
            labels = f.categories if f.kind == "categorical" else ["false", "true"]
            out.append(
                gxe.ExpectColumnValuesToBeInSet(
                    column=f.name, value_set=_typed(frame, f.name, labels or [])
                )
            )
        return out

    def facts(frame: pl.DataFrame) -> list[Expectation]:
        """Each declared domain constraint, on every row where its columns are present."""
        out: list[Expectation] = []
        for c in recipe.constraints:
            if c.kind == "at_most":
                out.append(
                    gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                        column_A=c.bound,
                        column_B=c.column,
                        or_equal=True,
                        ignore_row_if="either_value_is_missing",
                        description=f"{c.column} <= {c.bound}",
                    )
                )
            else:
                when = _typed(frame, c.when or "", [_label(c.when_value)])[0]
                out.append(
                    gxe.ExpectColumnValuesToBeInSet(
                        column=c.column,
                        value_set=[c.value],
                        row_condition=Column(c.when or "") == when,
                        description=f"{c.column} == {c.value:g} when {c.when} is {when}",
                    )
                )
        return out

    def target(frame: pl.DataFrame, t: TargetColumn, train: bool) -> list[Expectation]:
        out: list[Expectation] = [gxe.ExpectColumnValuesToNotBeNull(column=t.name)]
        if t.kind == "continuous":
            if t.nonnegative:
                out.append(gxe.ExpectColumnValuesToBeBetween(column=t.name, min_value=0))
            if train:
                out.append(
                    gxe.ExpectColumnStdevToBeBetween(column=t.name, min_value=0, strict_min=True)
                )
            return out
        labels = _typed(frame, t.name, recipe.class_labels(t))
        out.append(gxe.ExpectColumnValuesToBeInSet(column=t.name, value_set=labels))
        if train:
            out.append(gxe.ExpectColumnDistinctValuesToContainSet(column=t.name, value_set=labels))
        if train and t.kind == "binary":
            floor = _positive_rate_floor(recipe)
            positive = labels[1:]
            out += [
                gxe.ExpectColumnValuesToBeInSet(
                    column=t.name,
                    value_set=positive,
                    mostly=floor,
                    description=f"positive rate >= {floor:g}",
                ),
                gxe.ExpectColumnValuesToNotBeInSet(
                    column=t.name,
                    value_set=positive,
                    mostly=floor,
                    description=f"positive rate <= {1 - floor:g}",
                ),
            ]
        return out

    def submission(frame: pl.DataFrame) -> list[Expectation]:
        out: list[Expectation] = []
        kind = recipe.submission_kind
        for name, t in _submission_targets(recipe):
            out.append(gxe.ExpectColumnValuesToNotBeNull(column=name))
            if kind in (SubmissionKind.PROBABILITY, SubmissionKind.CLASS_PROBABILITIES):
                out.append(gxe.ExpectColumnValuesToBeBetween(column=name, min_value=0, max_value=1))
            elif kind == SubmissionKind.LABEL:
                labels = _typed(frame, name, recipe.class_labels(t))
                out.append(gxe.ExpectColumnValuesToBeInSet(column=name, value_set=labels))
            elif t.nonnegative:
                out.append(gxe.ExpectColumnValuesToBeBetween(column=name, min_value=0))
        return out

    train, test = frames["train"], frames["test"]
    suites: dict[str, list[Expectation]] = {
        "train": [
            gxe.ExpectTableColumnsToMatchOrderedList(column_list=[idc, *features, *targets]),
            *ids(recipe.n_train),
            *(e for f in recipe.features for e in feature(train, f)),
            *facts(train),
            *(e for t in recipe.targets for e in target(train, t, train=True)),
        ],
        "test": [
            gxe.ExpectTableColumnsToMatchOrderedList(column_list=[idc, *features]),
            *ids(recipe.n_test),
            *(e for f in recipe.features for e in feature(test, f)),
            *facts(test),
        ],
        "answers": [
            gxe.ExpectTableColumnsToMatchOrderedList(column_list=[idc, *targets]),
            *ids(recipe.n_test),
            *of_test("answers"),
            *(e for t in recipe.targets for e in target(frames["answers"], t, train=False)),
        ],
        "sample_submission": [
            gxe.ExpectTableColumnsToMatchOrderedList(column_list=recipe.submission_columns()),
            *ids(recipe.n_test),
            *of_test("sample_submission"),
            *submission(frames["sample_submission"]),
        ],
        "train+test": [
            gxe.ExpectColumnValuesToBeUnique(
                column=idc, description="train and test ids are disjoint"
            )
        ],
    }
    for expectations in suites.values():
        for order, expectation in enumerate(expectations):
            expectation.meta = {"order": order}
    return suites


def _submission_targets(recipe: Recipe) -> list[tuple[str, TargetColumn]]:
    """Each non-id submission column with the target it predicts."""
    if recipe.submission_kind == SubmissionKind.CLASS_PROBABILITIES:
        (t,) = recipe.targets
        return [(label, t) for label in recipe.class_labels(t)]
    return [(t.name, t) for t in recipe.targets]


def _positive_rate_floor(recipe: Recipe) -> float:
    """A recipe that asks for a rare minority class lowers the floor to half its rate."""
    minority = recipe.noise.minority_rate
    return POSITIVE_RATE_FLOOR if minority is None else min(POSITIVE_RATE_FLOOR, minority / 2)


def _values(frame: pl.DataFrame, column: str) -> list[Any]:
    return frame.get_column(column).drop_nulls().to_list() if column in frame.columns else []


def _typed(frame: pl.DataFrame, column: str, labels: list[str]) -> list[Any]:
    """Labels as the column stores them: ints in an integer column, bools in a boolean one."""
    dtype = frame.schema.get(column)
    if dtype is not None and dtype.is_integer() and all(_is_int(x) for x in labels):
        return [int(x) for x in labels]
    if dtype == pl.Boolean and set(labels) <= {"false", "true"}:
        return [x == "true" for x in labels]
    return list(labels)


def _label(value: bool | str) -> str:
    """A condition value as `_typed` reads labels: booleans as "true"/"false"."""
    return str(value).lower() if isinstance(value, bool) else value


def _is_int(text: str) -> bool:
    return text.lstrip("-").isdigit()


def _describe(table: str, result: ExpectationValidationResult) -> str:
    """`table.expectation(column): observed ...`, stable across runs."""
    config = result.expectation_config
    pair = [config.kwargs[k] for k in ("column_A", "column_B") if k in config.kwargs]
    column = config.kwargs.get("column", ", ".join(pair))
    line = f"{table}.{config.type}({column}): {_observed(result)}"
    mostly = config.kwargs.get("mostly")
    if mostly is not None and mostly < 1:
        line += f" (mostly={mostly:.3g})"
    if config.description:
        line += f" [{config.description}]"
    return line


def _observed(result: ExpectationValidationResult) -> str:
    errors = _errors(result.exception_info or {})
    if errors:
        return f"error: {errors[0].removeprefix('Error: ')}"
    got = result.result or {}
    if "observed_value" in got and got["observed_value"] is not None:
        expected = _expected(result.expectation_config.kwargs)
        return f"observed {_show(got['observed_value'])}, expected {expected}"
    if "partial_missing_list" in got:
        return f"observed missing {_show(got['partial_missing_list'])}"
    if "unexpected_count" in got:
        count, total = got["unexpected_count"], got.get("element_count", 0)
        share = f"{100.0 * count / total if total else 0.0:.1f}%"
        if result.expectation_config.type == "expect_column_values_to_not_be_null":
            return f"observed {count} of {total} rows null ({share})"
        examples = _show(got.get("partial_unexpected_list", [])[:SHOWN_VALUES])
        return f"observed {count} of {total} rows unexpected ({share}), e.g. {examples}"
    return "no result"


def _errors(info: dict[str, Any]) -> list[str]:
    """First lines of raised exceptions; GX nests them per metric when a metric fails."""
    nested = [v for _, v in sorted(info.items()) if isinstance(v, dict)]
    found = [e for e in [info, *nested] if e.get("raised_exception")]
    return sorted({str(e.get("exception_message") or "exception").splitlines()[0] for e in found})


def _expected(kwargs: dict[str, Any]) -> str:
    for key in ("value", "column_list"):
        if key in kwargs:
            return _show(kwargs[key])
    low, high = kwargs.get("min_value"), kwargs.get("max_value")
    strict = ">" if kwargs.get("strict_min") else ">="
    if high is None:
        return f"{strict} {_show(low)}"
    return f"{_show(low)}..{_show(high)}"


def _show(value: Any) -> str:
    """Render GX values (numpy scalars, NaN, long lists) compactly and deterministically."""
    if isinstance(value, list | tuple):
        shown = ", ".join(_show(v) for v in value[:20])
        return f"[{shown}{', ...' if len(value) > 20 else ''}]"
    if hasattr(value, "item"):
        value = value.item()
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "null"
    if isinstance(value, float):
        return f"{value:.6g}"
    return repr(value)
