"""Exports from a real SeaweedFS store in each consumer's layout (CONTRACTS.md), checked with
the consumers' own rules: SandMLE's ok-lists and evaluator call, MLE-bench's registry files,
checksums, rank rules and grader, MLE-Dojo's required paths, metric class and HumanRank."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pandas as pd
import pytest
import yaml
from bundle_factory import make_task
from mlebench_rules import mlebench_thresholds
from sandforge.storage.backends import open_store
from sandforge.storage.bundle import UNHASHED_FIELDS, build_manifest
from sandforge.storage.catalog import publish_and_catalog
from sandforge.storage.consumer_grades import bundle_config, grade
from sandforge.storage.layouts.base import MARKER
from sandforge.storage.layouts.mlebench import MLEBench
from sandforge.storage.layouts.sandmle import SandMLE
from sandforge.storage.pulling import pull, select
from sandforge.storage.s3 import S3Store
from sandforge.validators.evaluator import config_of, render_evaluator, score_submission

TASKS = ("alpha", "gamma")  # rmse (lower is better), accuracy (higher is better)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory, s3_server_status: object) -> dict[str, Path]:
    """Both tasks published to S3 once, then exported in every layout."""
    with pytest.MonkeyPatch.context() as patch:
        for var, value in s3_server_status.env().items():  # type: ignore[attr-defined]
            patch.setenv(var, value)
        S3Store("sandforge-test").create_bucket()
        store = open_store("s3://sandforge-test/layouts")
        for task_id in TASKS:
            publish_and_catalog(store, *make_task(task_id, binary=task_id == "gamma"))
        root = tmp_path_factory.mktemp("exports")
        outs = {}
        for layout in ("sandmle", "mlebench", "mledojo", "native"):
            outs[layout] = root / layout
            assert pull(store, select(store), outs[layout], layout=layout).task_ids == list(TASKS)
        return outs


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def mlebench_checksums(folder: Path) -> dict[str, str]:
    """mlebench.data.generate_checksums: top-level csv/json/jsonl/parquet/bson files."""
    exts = ("csv", "json", "jsonl", "parquet", "bson")
    return {p.name: _md5(p) for ext in exts for p in folder.glob(f"*.{ext}") if p.is_file()}


def dojo_position_score(score: float, board: Path, higher_is_better: bool) -> float:
    """MLE-Dojo's _calculate_leaderboard_position on one board."""
    scores = pd.read_csv(board).iloc[:, 1].values
    ordered = sorted(scores, reverse=higher_is_better)
    position = next(
        (i + 1 for i, s in enumerate(ordered) if (score >= s if higher_is_better else score <= s)),
        len(ordered) + 1,
    )
    return (len(ordered) - position + 1) / len(ordered)


# -- SandMLE -----------------------------------------------------------------------------------


def test_sandmle_layout_runs_as_the_trainer_runs_it(exported: dict[str, Path]) -> None:
    out = exported["sandmle"]
    assert json.loads((out / "ok_competitions_sanity.json").read_text()) == list(TASKS)
    assert json.loads((out / "ok_competitions_sanity_random_64.json").read_text()) == list(TASKS)
    for task_id in TASKS:
        public = out / task_id / "prepared" / "public"
        assert sorted(p.name for p in public.iterdir()) == [
            "description.md",
            "evaluator.py",
            "sample_submission.csv",
            "test.csv",
            "train.csv",
        ]
        run = subprocess.run(
            [sys.executable, "evaluator.py", "--submission_path", "sample_submission.csv"],
            cwd=public,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert run.returncode == 0, run.stderr
        assert set(json.loads(run.stdout)) == {
            "score",
            "is_lower_better",
            "gold_threshold",
            "silver_threshold",
            "bronze_threshold",
            "median_threshold",
        }


# -- MLE-bench -----------------------------------------------------------------------------------


def test_mlebench_registry_files_and_data_dir(
    exported: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = exported["mlebench"]
    for task_id in TASKS:
        competition, data = out / "competitions" / task_id, out / "data" / task_id
        config = yaml.safe_load((competition / "config.yaml").read_text())
        module = f"mlebench.competitions.{task_id}"
        assert config == {
            "id": task_id,
            "name": f"Toy {task_id}",
            "competition_type": "simple",
            "awards_medals": True,
            "prizes": None,
            "description": f"mlebench/competitions/{task_id}/description.md",
            "dataset": {
                "answers": f"{task_id}/prepared/private/answer.csv",
                "sample_submission": f"{task_id}/prepared/public/sample_submission.csv",
            },
            "grader": {"name": config["grader"]["name"], "grade_fn": f"{module}.grade:grade"},
            "preparer": f"{module}.prepare:prepare",
        }
        for key in ("answers", "sample_submission"):
            assert (out / "data" / config["dataset"][key]).is_file()
        assert {p.name for p in competition.iterdir()} == {
            "config.yaml",
            "description.md",
            "grade.py",
            "evaluator.py",
            "prepare.py",
            "leaderboard.csv",
            "checksums.yaml",
        }
        public, private = data / "prepared" / "public", data / "prepared" / "private"
        assert not (public / "evaluator.py").exists() and not (public / "answer.csv").exists()
        assert (public / "description.md").read_bytes() == (
            competition / "description.md"
        ).read_bytes()

        checksums = yaml.safe_load((competition / "checksums.yaml").read_text())
        assert checksums == {
            "public": mlebench_checksums(public),
            "private": mlebench_checksums(private),
            "zip": _md5(data / f"{task_id}.zip"),
        }
        with zipfile.ZipFile(data / f"{task_id}.zip") as archive:
            names = sorted(archive.namelist())
        assert names == sorted(
            p.relative_to(data / "raw").as_posix() for p in (data / "raw").rglob("*.*")
        )

        monkeypatch.setattr(sys, "dont_write_bytecode", True)
        monkeypatch.syspath_prepend(str(competition))  # prepare.py reproduces prepared/ from raw/
        try:
            from prepare import prepare  # type: ignore[import-not-found]
        finally:
            sys.modules.pop("prepare", None)
        fresh = tmp_path / task_id
        prepare(raw=data / "raw", public=fresh / "public", private=fresh / "private")
        assert mlebench_checksums(fresh / "public") == checksums["public"]
        assert mlebench_checksums(fresh / "private") == checksums["private"]


@pytest.mark.parametrize("task_id", TASKS)
def test_mlebench_rank_rules_give_back_our_thresholds(
    exported: dict[str, Path], task_id: str
) -> None:
    manifest = json.loads((exported["native"] / task_id / "1" / "manifest.json").read_text())
    leaderboard = pd.read_csv(exported["mlebench"] / "competitions" / task_id / "leaderboard.csv")
    derived = mlebench_thresholds(leaderboard)
    assert derived == {**manifest["thresholds"], "is_lower_better": manifest["is_lower_better"]}
    assert list(leaderboard.columns) == ["teamName", "score"]


STANDALONE = textwrap.dedent(
    """
    import importlib.util, json, sys, types
    import pandas as pd

    def load(path, name):
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    def check(grade_py, metric_py, submission, answers):
        sub, ans = pd.read_csv(submission), pd.read_csv(answers)
        grade = load(grade_py, "grade_alone")
        result = {"score": grade.grade(sub, ans)}
        try:
            grade.grade(sub.iloc[1:], ans)
        except grade.InvalidSubmissionError as exc:
            result["invalid"] = str(exc)
        result["ours"] = [m for m in sys.modules if m.split(".")[0] in ("storage", "validators")]
        metrics = load(metric_py, "metric_alone").SandforgeMetrics()
        result["higher_is_better"] = metrics.higher_is_better
        result["dojo_valid"] = metrics.validate_submission(sub, ans)
        result["dojo_score"] = metrics.evaluate(ans, sub)

        fake = types.ModuleType("mlebench.grade_helpers")  # inside an MLE-bench checkout
        fake.InvalidSubmissionError = type("InvalidSubmissionError", (Exception,), {})
        sys.modules["mlebench"] = types.ModuleType("mlebench")
        sys.modules["mlebench.grade_helpers"] = fake
        try:
            load(grade_py, "grade_in_mlebench").grade(sub.iloc[1:], ans)
        except fake.InvalidSubmissionError:
            result["mlebench_class"] = True
        for name in ("mlebench", "mlebench.grade_helpers"):
            del sys.modules[name]
        return result

    args = sys.argv[1:]
    print(json.dumps([check(*args[i : i + 4]) for i in range(0, len(args), 4)]))
    """
)


def test_grade_py_and_metric_py_run_standalone(exported: dict[str, Path]) -> None:
    """Isolated python with pandas only: the scores equal the factory's own."""
    paths, expected = [], []
    for task_id in TASKS:
        data = exported["mlebench"] / "data" / task_id / "prepared"
        submission = data / "public" / "sample_submission.csv"
        answers = data / "private" / "answer.csv"
        paths += [
            exported["mlebench"] / "competitions" / task_id / "grade.py",
            exported["mledojo"] / "competitions" / task_id / "utils" / "metric.py",
            submission,
            answers,
        ]
        config = bundle_config(exported["native"] / task_id / "1")
        expected.append(score_submission(config, submission, answers))
    run = subprocess.run(
        [sys.executable, "-I", "-B", "-c", STANDALONE, *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
    )
    assert run.returncode == 0, run.stderr
    for task_id, result, score in zip(TASKS, json.loads(run.stdout), expected, strict=True):
        assert result["score"] == pytest.approx(score, abs=1e-12)
        assert result["dojo_score"] == pytest.approx(score, abs=1e-12)
        assert "test id(s) missing" in result["invalid"]
        assert result["ours"] == []
        assert result["mlebench_class"] is True
        assert result["higher_is_better"] is (task_id == "gamma")
        assert result["dojo_valid"] == "Submission is valid."


# -- MLE-Dojo ------------------------------------------------------------------------------------


def test_mledojo_layout_has_the_required_paths(exported: dict[str, Path]) -> None:
    out = exported["mledojo"]
    for task_id in TASKS:
        data = out / "prepared" / task_id / "data"
        for required in (  # mledojo.gym.competition.Competition.REQUIRED_PATHS
            "public/description.txt",
            "public/sample_submission.csv",
            "private/test_answer.csv",
        ):
            assert (data / required).is_file(), required
        info = out / "competitions" / task_id / "info"
        description = exported["sandmle"] / task_id / "prepared" / "public" / "description.md"
        assert (info / "description.txt").read_bytes() == description.read_bytes()
        assert not (data / "public" / "evaluator.py").exists()
        for board in ("public_leaderboard.csv", "private_leaderboard.csv"):
            frame = pd.read_csv(info / board)
            assert list(frame.columns) == ["rank", "score"] and list(frame["rank"]) == list(
                range(1, 11)
            )
            assert (data / "private" / board).read_bytes() == (info / board).read_bytes()
        utils = out / "competitions" / task_id / "utils"
        assert {p.name for p in utils.iterdir()} == {"prepare.py", "metric.py", "evaluator.py"}


@pytest.mark.parametrize("task_id", TASKS)
def test_position_score_matches_mledojo(
    exported: dict[str, Path], task_id: str, tmp_path: Path
) -> None:
    bundle = exported["native"] / task_id / "1"
    board = (
        exported["mledojo"] / "prepared" / task_id / "data" / "private" / "private_leaderboard.csv"
    )
    higher = task_id == "gamma"
    perfect = tmp_path / "perfect.csv"  # a copy of the answers: a perfect rmse/accuracy entry
    perfect.write_bytes((bundle / "prepared" / "private" / "answer.csv").read_bytes())
    for submission in (bundle / "prepared" / "public" / "sample_submission.csv", perfect):
        report = grade(bundle, submission).report
        score = score_submission(
            bundle_config(bundle), submission, bundle / "prepared" / "private" / "answer.csv"
        )
        assert report["score"] == score
        assert report["mledojo_position_score"] == dojo_position_score(score, board, higher)


def test_a_re_export_skips_unchanged_tasks(
    exported: dict[str, Path], s3_env: dict[str, str]
) -> None:
    store = open_store("s3://sandforge-test/layouts")
    for layout in ("sandmle", "mlebench", "mledojo", "native"):
        again = pull(store, select(store), exported[layout], layout=layout)
        assert (again.pulled, len(again.skipped), again.files) == ([], len(TASKS), 0)
        markers = [
            p.relative_to(exported[layout]).as_posix() for p in exported[layout].rglob(MARKER)
        ]
        assert not [m for m in markers if "/public/" in m or m.startswith("competitions/")]


@pytest.mark.parametrize("seed", range(40))
def test_synthesized_leaderboards_reproduce_any_accepted_ladder(seed: int) -> None:
    """Random strictly ordered thresholds, either direction, with or without baselines."""
    import random

    from sandforge.storage.leaderboard import leaderboard

    rng = random.Random(seed)
    lower = seed % 2 == 0
    ladder = sorted(round(rng.uniform(-5, 50), rng.choice((1, 3, 6))) for _ in range(4))
    if len(set(ladder)) < 4:
        return
    gold, silver, bronze, median = ladder if lower else ladder[::-1]
    thresholds = {"gold": gold, "silver": silver, "bronze": bronze, "median": median}
    worse = median + 1 if lower else median - 1
    scores = {} if seed % 3 == 0 else {"trivial": worse, "sample": rng.choice((worse, median))}
    manifest = {"thresholds": thresholds, "is_lower_better": lower, "baseline_scores": scores}
    frame = pd.DataFrame(leaderboard(manifest), columns=["teamName", "score"])
    assert mlebench_thresholds(frame) == {**thresholds, "is_lower_better": lower}


# -- rendered without a store: gold submissions, SandMLE's answers-in-public option -------------


def probability_task(metric: str) -> tuple[dict, dict[str, bytes]]:
    """gamma's data scored by a probability metric: roc_auc or multiclass_log_loss."""
    manifest, files = make_task("delta", binary=True)
    config = config_of(files["prepared/public/evaluator.py"].decode())
    lower = metric == "multiclass_log_loss"
    columns = ["id", "0", "1"] if lower else ["id", "y"]
    thresholds = (
        {"median": 0.6, "bronze": 0.5, "silver": 0.3, "gold": 0.1}
        if lower
        else {"median": 0.6, "bronze": 0.7, "silver": 0.8, "gold": 0.9}
    )
    config.update(
        metric=metric, submission_columns=columns, is_lower_better=lower, thresholds=thresholds
    )
    ids = [line.split(",")[0] for line in files["prepared/public/test.csv"].decode().split()[1:]]
    half = ",".join(["0.5"] * (len(columns) - 1))
    files = {
        **files,
        "prepared/public/evaluator.py": render_evaluator(config).encode(),
        "prepared/public/sample_submission.csv": "\n".join(
            [",".join(columns), *(f"{i},{half}" for i in ids)]
        ).encode()
        + b"\n",
    }
    fields = {k: v for k, v in manifest.items() if k not in UNHASHED_FIELDS and k != "files"}
    fields.update(metric=metric, is_lower_better=lower, thresholds=thresholds)
    fields["baseline_scores"] = {
        "trivial": 0.69 if lower else 0.5,
        "sample": 0.69 if lower else 0.5,
    }
    return build_manifest(files, **fields), files


def write_tree(root: Path, rendered: dict[str, bytes]) -> Path:
    for path, data in rendered.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)
    return root


@pytest.mark.parametrize("metric", ["roc_auc", "multiclass_log_loss"])
def test_mlebench_ships_a_gold_submission_for_probability_metrics(
    metric: str, tmp_path: Path
) -> None:
    manifest, files = probability_task(metric)
    out = write_tree(tmp_path, MLEBench().render(manifest, files))
    competition, data = out / "competitions" / "delta", out / "data" / "delta"
    dataset = yaml.safe_load((competition / "config.yaml").read_text())["dataset"]
    assert dataset["gold_submission"] == "delta/prepared/private/gold_submission.csv"
    gold = out / "data" / dataset["gold_submission"]
    assert gold.read_bytes() == (data / "raw" / "private" / "gold_submission.csv").read_bytes()
    checksums = yaml.safe_load((competition / "checksums.yaml").read_text())
    assert checksums["private"] == mlebench_checksums(data / "prepared" / "private")
    assert "gold_submission.csv" in checksums["private"]
    # mlebench grades its gold submission with grade.py and expects the best score
    answers = data / "prepared" / "private" / "answer.csv"
    paths = [str(path) for path in (competition / "grade.py", gold, answers)]
    run = subprocess.run(
        [sys.executable, "-I", "-B", "-c", GRADE_GOLD, *paths],
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
    )
    assert run.returncode == 0, run.stderr
    assert float(run.stdout) == (0.0 if metric == "multiclass_log_loss" else 1.0)


GRADE_GOLD = textwrap.dedent(
    """
    import importlib.util, sys
    import pandas as pd
    spec = importlib.util.spec_from_file_location("grade", sys.argv[1])
    grade = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(grade)
    print(grade.grade(pd.read_csv(sys.argv[2]), pd.read_csv(sys.argv[3])))
    """
)


def test_label_and_value_tasks_need_no_gold_submission() -> None:
    for binary in (False, True):
        manifest, files = make_task("alpha", binary=binary)
        rendered = MLEBench().render(manifest, files)
        assert not [path for path in rendered if path.endswith("gold_submission.csv")]


def test_sandmle_answers_in_public_is_an_explicit_option(tmp_path: Path) -> None:
    manifest, files = make_task("alpha")
    default = write_tree(tmp_path / "default", SandMLE().render(manifest, files))
    assert not (default / "alpha" / "prepared" / "public" / "answer.csv").exists()
    out = write_tree(tmp_path / "public", SandMLE(answers_in_public=True).render(manifest, files))
    public = out / "alpha" / "prepared" / "public"
    assert (public / "answer.csv").read_bytes() == files["prepared/private/answer.csv"]
    assert not (out / "alpha" / "prepared" / "private").exists()

    def run(submission: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "evaluator.py", "--submission_path", submission],
            cwd=public,
            capture_output=True,
            text=True,
            timeout=30,
        )

    scored = run("sample_submission.csv")
    assert scored.returncode == 0, scored.stderr
    config = config_of((public / "evaluator.py").read_text())
    expected = score_submission(config, public / "sample_submission.csv", public / "answer.csv")
    assert json.loads(scored.stdout)["score"] == expected
    refused = run("answer.csv")
    assert refused.returncode == 1 and "hidden answers" in refused.stderr


def test_export_answers_in_public_through_the_cli(tmp_path: Path) -> None:
    from sandforge.storage.local import LocalStore

    from sandforge.cli import main

    store = LocalStore(tmp_path / "store")
    store.publish(*make_task("alpha"))
    out = tmp_path / "out"
    common = ["export", "--store", str(tmp_path / "store"), "--out", str(out)]
    assert main([*common, "--layout", "mlebench", "--answers-in-public"]) == 2
    assert not out.exists()
    assert main([*common, "--layout", "sandmle"]) == 0
    assert not (out / "alpha" / "prepared" / "public" / "answer.csv").exists()
    assert main([*common, "--layout", "sandmle", "--answers-in-public"]) == 0  # re-rendered
    public = out / "alpha" / "prepared" / "public"
    assert (public / "answer.csv").is_file() and not (
        out / "alpha" / "prepared" / "private"
    ).exists()
    assert 'ANSWERS = "answer.csv"' in (public / "evaluator.py").read_text()
