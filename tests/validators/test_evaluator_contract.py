"""The rendered evaluator.py keeps SandMLE's contract when run the way the trainer runs it.

Each test writes a bundle (`<task>/prepared/public/evaluator.py`, answers under
`<task>/prepared/private/`) and runs `python evaluator.py --submission_path PATH` with
cwd = public, as a fresh process.
"""

from __future__ import annotations

import ast
import csv
import json
import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from sandforge.agents.recipe import FeatureColumn, NoiseSpec, Recipe, RuleSpec, TargetColumn
from sandforge.validators import evaluator_template as template
from sandforge.validators.evaluator import (
    evaluator_config,
    render_evaluator,
    score_submission,
    with_answers_at,
)
from sandforge.validators.metrics import METRICS as CATALOGUE
from sandforge.validators.metrics import TaskType

N_TEST = 60
THRESHOLDS = {"gold": 0.9, "silver": 0.8, "bronze": 0.7, "median": 0.5}
FEATURES = [
    FeatureColumn(name="age", kind="numeric", description="age", role="signal", low=20, high=60),
    FeatureColumn(name="owner", kind="boolean", description="owner", role="distractor"),
]


def _continuous(name: str) -> TargetColumn:
    return TargetColumn(
        name=name, description=name, kind="continuous", center=50, scale=10, nonnegative=True
    )


TARGETS = {
    TaskType.BINARY: [TargetColumn(name="churn", description="churned", kind="binary")],
    TaskType.MULTICLASS: [
        TargetColumn(
            name="species", description="species", kind="categorical", classes=["ant", "bee", "cat"]
        )
    ],
    TaskType.ORDINAL: [
        TargetColumn(
            name="grade", description="grade", kind="ordinal", classes=["low", "mid", "high", "top"]
        )
    ],
    TaskType.MULTILABEL: [
        TargetColumn(name="a", description="a", kind="binary"),
        TargetColumn(name="b", description="b", kind="binary"),
    ],
    TaskType.REGRESSION: [_continuous("price")],
    TaskType.MULTI_TARGET_REGRESSION: [_continuous("x"), _continuous("y"), _continuous("z")],
}


def make_recipe(metric: str) -> Recipe:
    task_type = next(t for t in TARGETS if t in CATALOGUE[metric].task_types)
    return Recipe(
        task_id=f"contract-{metric.replace('_', '-')}",
        seed_id="seed",
        domain="testing",
        title="Contract task",
        entity="row",
        task_type=task_type,
        metric=metric,
        id_column="row_id",
        features=FEATURES,
        targets=TARGETS[task_type],
        rule=RuleSpec(family="linear", signal_strength=1.0),
        noise=NoiseSpec(),
        n_train=100,
        n_test=N_TEST,
        rng_seed=3,
    )


def _answer_cell(config: dict, target: str, i: int, rng: random.Random) -> str:
    classes = config.get("classes", {}).get(target)
    if classes is None:
        return f"{rng.uniform(1, 100):.3f}"
    return classes[i % len(classes)]  # every class present


def answers_for(config: dict, rng: random.Random) -> tuple[list[str], list[list[str]]]:
    header = [config["id_column"], *config["target_columns"]]
    rows = [
        [str(1000 + i), *(_answer_cell(config, t, i, rng) for t in config["target_columns"])]
        for i in range(N_TEST)
    ]
    return header, rows


def _prediction_cells(config: dict, rng: random.Random) -> list[str]:
    kind = template.KINDS[config["metric"]]
    columns = config["submission_columns"][1:]
    if kind == "label":
        return [rng.choice(config["classes"][column]) for column in columns]
    if kind == "class_probabilities":
        weights = [rng.random() + 0.01 for _ in columns]
        return [f"{w / sum(weights):.6f}" for w in weights]
    if kind == "probability":
        return [f"{rng.random():.2f}" for _ in columns]  # two decimals: ties
    return [f"{rng.uniform(0, 120):.3f}" for _ in columns]


def submission_for(config: dict, answer_rows, rng: random.Random):
    header = list(config["submission_columns"])
    return header, [[row[0], *_prediction_cells(config, rng)] for row in answer_rows]


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([header, *rows])
    return path


def make_bundle(root: Path, config: dict, answers, private: bool = True) -> Path:
    """A task folder; answers go to prepared/private/ or, SandMLE-style, into public/."""
    public = root / "task" / "prepared" / "public"
    public.mkdir(parents=True)
    (public / "evaluator.py").write_text(render_evaluator(config), encoding="utf-8")
    answer_dir = public.parent / "private" if private else public
    answer_dir.mkdir(exist_ok=True)
    write_csv(answer_dir / "answer.csv", *answers)
    return public


def run_evaluator(public: Path, submission: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "evaluator.py", "--submission_path", str(submission)],
        cwd=public,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=30,
    )


def parse_report(result: subprocess.CompletedProcess) -> dict:
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)  # the whole stdout is one JSON object
    assert isinstance(report, dict)
    keys = ["score", "is_lower_better", *(f"{k}_threshold" for k in THRESHOLDS)]
    assert sorted(report) == sorted(keys)
    assert isinstance(report["is_lower_better"], bool)
    for key in keys:
        float(report[key])
    return report


@pytest.fixture
def bundle(tmp_path: Path):
    """Build a task for a metric with a valid submission; returns (public, config, answers, sub)."""

    def build(metric: str, private: bool = True):
        config = evaluator_config(make_recipe(metric), THRESHOLDS)
        rng = random.Random(metric)
        answers = answers_for(config, rng)
        public = make_bundle(tmp_path, config, answers, private)
        return public, config, answers, submission_for(config, answers[1], rng)

    return build


@pytest.mark.parametrize("metric", sorted(template.METRICS))
def test_valid_submission_prints_one_report_with_the_in_process_score(bundle, tmp_path, metric):
    public, config, _, submission = bundle(metric)
    path = write_csv(tmp_path / "submission.csv", *submission)
    report = parse_report(run_evaluator(public, path))
    assert report["is_lower_better"] is CATALOGUE[metric].lower_is_better
    assert [report[f"{k}_threshold"] for k in THRESHOLDS] == list(THRESHOLDS.values())
    private_answers = public.parent / "private" / "answer.csv"
    assert report["score"] == score_submission(config, path, private_answers)


def test_columns_and_rows_may_come_in_any_order(bundle, tmp_path):
    public, _, _, (header, rows) = bundle("multiclass_log_loss")
    base = parse_report(run_evaluator(public, write_csv(tmp_path / "a.csv", header, rows)))
    order = list(reversed(range(len(header))))
    shuffled = [[row[i] for i in order] for row in reversed(rows)]
    path = write_csv(tmp_path / "b.csv", [header[i] for i in order], shuffled)
    assert parse_report(run_evaluator(public, path))["score"] == base["score"]


def test_never_falls_back_to_answers_in_the_working_directory(bundle, tmp_path):
    """An agent that writes its own answer.csv where the evaluator runs must not score gold."""
    public, _, _, submission = bundle("accuracy", private=False)
    assert not (public.parent / "private").exists()
    path = write_csv(tmp_path / "submission.csv", *submission)
    result = run_evaluator(public, path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert "no answers at" in result.stderr and "private" in result.stderr


def test_answers_in_public_only_where_the_evaluator_says_so(bundle, tmp_path):
    """SandMLE's own layout (an explicit export option) rewrites ANSWERS to answer.csv."""
    public, config, _, submission = bundle("accuracy", private=False)
    source = (public / "evaluator.py").read_text(encoding="utf-8")
    (public / "evaluator.py").write_text(with_answers_at(source, "answer.csv"), encoding="utf-8")
    path = write_csv(tmp_path / "submission.csv", *submission)
    report = parse_report(run_evaluator(public, path))
    assert report["score"] == score_submission(config, path, public / "answer.csv")
    refused = run_evaluator(public, public / "answer.csv")
    assert refused.returncode == 1 and "hidden answers" in refused.stderr
    sample = write_csv(public / "sample_submission.csv", *submission)  # beside the answers: fine
    assert parse_report(run_evaluator(public, sample))["score"] == report["score"]


def test_without_answers_exits_2_and_says_where_it_looked(bundle, tmp_path):
    public, _, _, submission = bundle("accuracy")
    (public.parent / "private" / "answer.csv").unlink()
    result = run_evaluator(public, write_csv(tmp_path / "submission.csv", *submission))
    assert result.returncode == 2
    assert result.stdout == ""
    assert "answer.csv" in result.stderr


def test_unrendered_grader_exits_2(bundle, tmp_path):
    public, _, _, submission = bundle("accuracy")
    (public / "evaluator.py").write_text(Path(template.__file__).read_text(encoding="utf-8"))
    result = run_evaluator(public, write_csv(tmp_path / "submission.csv", *submission))
    assert result.returncode == 2
    assert "CONFIG" in result.stderr


Mutation = Callable[[list[str], list[list[str]]], tuple[list[str], list[list[str]]]]


def _set(row: int, column: int, value: str) -> Mutation:
    def mutate(header, rows):
        rows[row][column] = value
        return header, rows

    return mutate


def _drop_column(header, rows):
    return header[:-1], [row[:-1] for row in rows]


def _add_column(header, rows):
    return [*header, "extra"], [[*row, "0"] for row in rows]


def _rename_column(header, rows):
    return [*header[:-1], "wrong"], rows


INVALID = [
    # (case, metric, mutation, fragments the message must contain)
    ("missing id", "multiclass_log_loss", lambda h, r: (h, r[1:]), ["missing", "'1000'"]),
    ("unknown id", "rmse", _set(0, 0, "99999"), ["not in the test set", "99999", "line 2"]),
    (
        "one row too many",
        "rmse",
        lambda h, r: (h, [*r, ["99999", "1.0"]]),
        ["more data rows than the 60 ids"],
    ),
    (
        "duplicate id",
        "accuracy",
        lambda h, r: (h, [*r[:6], r[5], *r[7:]]),
        ["duplicate", "'1005'", "line 8"],
    ),
    ("half the rows", "rmse", lambda h, r: (h, r[::2]), ["has 30 rows", "test set 60"]),
    ("header only", "rmse", lambda h, r: (h, []), ["no rows"]),
    ("renamed column", "multiclass_log_loss", _rename_column, ["missing", "'cat'", "'wrong'"]),
    ("missing column", "multiclass_log_loss", _drop_column, ["missing column", "'cat'"]),
    ("extra column", "roc_auc", _add_column, ["unexpected column", "'extra'"]),
    ("ragged row", "rmse", lambda h, r: (h, [*r[:3], r[3][:1], *r[4:]]), ["fields", "line 5"]),
    ("nan", "mean_columnwise_rmse", _set(2, 2, "nan"), ["'y'", "'1002'", "line 4", "finite"]),
    ("inf", "mae", _set(2, 1, "inf"), ["'1002'", "finite"]),
    ("overflowing float", "rmse", _set(2, 1, "1e400"), ["'price'", "line 4", "finite"]),
    ("huge value", "rmse", _set(2, 1, "1e200"), ["'price'", "line 4", "out of range"]),
    ("square overflows", "mean_columnwise_rmse", _set(5, 1, "1e154"), ["'x'", "line 7"]),
    ("non-numeric", "rmse", _set(4, 1, "abc"), ["'abc'", "not a number", "'1004'"]),
    ("empty cell", "log_loss", _set(4, 1, ""), ["empty value", "'1004'"]),
    ("unknown label", "quadratic_weighted_kappa", _set(7, 1, "huge"), ["'huge'", "'1007'"]),
    ("binary label as float", "macro_f1", _set(0, 1, "1.0"), ["'1.0'", "labels"]),
    ("probability above 1", "roc_auc", _set(1, 1, "1.5"), ["probability", "'1001'"]),
    ("negative class probability", "multiclass_log_loss", _set(1, 2, "-0.1"), ["probability"]),
    ("negative rmsle prediction", "rmsle", _set(3, 1, "-2"), ["negative", "'1003'"]),
]


@pytest.mark.parametrize(
    ("metric", "mutate", "fragments"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID]
)
def test_invalid_submission_exits_1_and_names_the_problem(
    bundle, tmp_path, metric, mutate, fragments
):
    public, _, _, (header, rows) = bundle(metric)
    path = write_csv(tmp_path / "submission.csv", *mutate(header, [list(r) for r in rows]))
    result = run_evaluator(public, path)
    assert result.returncode == 1, result.stdout
    assert result.stdout == ""
    assert result.stderr.startswith("invalid submission: ")
    for fragment in fragments:
        assert fragment in result.stderr


@pytest.mark.parametrize("content", ["", "\n\n"], ids=["empty", "blank lines"])
def test_empty_file_is_invalid(bundle, tmp_path, content):
    public, *_ = bundle("rmse")
    path = tmp_path / "submission.csv"
    path.write_text(content)
    result = run_evaluator(public, path)
    assert result.returncode == 1
    assert "empty" in result.stderr


def test_missing_submission_file_is_invalid(bundle, tmp_path):
    public, *_ = bundle("rmse")
    result = run_evaluator(public, tmp_path / "nope.csv")
    assert result.returncode == 1
    assert "cannot read" in result.stderr


def test_in_process_scoring_raises_invalid_submission(bundle, tmp_path):
    public, config, _, (header, rows) = bundle("accuracy")
    path = write_csv(tmp_path / "submission.csv", header, rows[1:])
    with pytest.raises(template.InvalidSubmission, match="missing"):
        score_submission(config, path, public.parent / "private" / "answer.csv")


def _rendered_config(source: str) -> dict:
    (node,) = (
        n
        for n in ast.parse(source).body
        if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", None) == "CONFIG"
    )
    return ast.literal_eval(node.value)


def test_render_is_deterministic_and_round_trips_the_config():
    config = evaluator_config(make_recipe("quadratic_weighted_kappa"), THRESHOLDS)
    source = render_evaluator(config)
    assert source == render_evaluator(dict(reversed(config.items())))
    assert _rendered_config(source) == config
    assert source.count("CONFIG = None") == 0
    grader_lines = Path(template.__file__).read_text(encoding="utf-8").splitlines()
    rendered_lines = source.splitlines()
    assert (
        rendered_lines[: grader_lines.index("CONFIG = None")]
        == grader_lines[: grader_lines.index("CONFIG = None")]
    )


@pytest.mark.parametrize("bad", [float("nan"), object(), (1, 2)], ids=["nan", "object", "tuple"])
def test_render_rejects_values_without_a_faithful_literal(bad):
    config = evaluator_config(make_recipe("rmse"), THRESHOLDS)
    with pytest.raises(ValueError):
        render_evaluator({**config, "extra": bad})


def test_config_follows_the_recipe():
    config = evaluator_config(make_recipe("quadratic_weighted_kappa"), None)
    assert config == {
        "metric": "quadratic_weighted_kappa",
        "id_column": "row_id",
        "target_columns": ["grade"],
        "submission_columns": ["row_id", "grade"],
        "classes": {"grade": ["low", "mid", "high", "top"]},
        "is_lower_better": False,
        "thresholds": {"gold": 0.0, "silver": 0.0, "bronze": 0.0, "median": 0.0},
    }
    multiclass = evaluator_config(make_recipe("multiclass_log_loss"), THRESHOLDS)
    assert multiclass["submission_columns"] == ["row_id", "ant", "bee", "cat"]
    assert multiclass["is_lower_better"] is True
    assert "classes" not in evaluator_config(make_recipe("rmsle"), THRESHOLDS)


def test_config_rejects_incomplete_thresholds():
    with pytest.raises(ValueError, match="median"):
        evaluator_config(make_recipe("rmse"), {"gold": 1.0, "silver": 2.0, "bronze": 3.0})


def test_the_submission_path_may_be_given_with_an_equals_sign(bundle, tmp_path):
    public, *_, submission = bundle("rmse")
    path = write_csv(tmp_path / "submission.csv", *submission)
    spaced = parse_report(run_evaluator(public, path))
    joined = subprocess.run(
        [sys.executable, "evaluator.py", f"--submission_path={path}"],
        cwd=public,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert parse_report(joined) == spaced


@pytest.mark.parametrize("argv", [[], ["--submission_path"], ["--other", "x"], ["a", "b", "c"]])
def test_bad_arguments_exit_2_with_the_usage(bundle, argv):
    public, *_ = bundle("rmse")
    result = subprocess.run(
        [sys.executable, "evaluator.py", *argv], cwd=public, capture_output=True, text=True
    )
    assert result.returncode == 2 and result.stdout == ""
    assert "usage: evaluator.py --submission_path PATH" in result.stderr
