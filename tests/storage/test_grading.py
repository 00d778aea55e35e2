"""`sandforge grade` and the consumer rules behind it: MLE-bench medals, SandMLE's reward."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bundle_factory import REGRESSION, make_task
from sandforge.storage.bundle import BundleError
from sandforge.storage.consumer_grades import grade
from sandforge.storage.leaderboard import leaderboard, mlebench_medals, sandmle_reward
from sandforge.storage.local import LocalStore

from sandforge.cli import EXIT_FAILED, EXIT_OK, main

REPORT_FIELDS = [  # CONTRACTS.md, MLE-bench's grading report, in order
    "competition_id",
    "score",
    "gold_threshold",
    "silver_threshold",
    "bronze_threshold",
    "median_threshold",
    "any_medal",
    "gold_medal",
    "silver_medal",
    "bronze_medal",
    "above_median",
    "submission_exists",
    "valid_submission",
    "is_lower_better",
    "created_at",
    "submission_path",
]
HIGHER = {"median": 0.6, "bronze": 0.7, "silver": 0.8, "gold": 0.9}


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    store = LocalStore(tmp_path / "store")
    store.publish(*make_task("alpha"))
    return store.bundle_path("alpha", 1)


@pytest.mark.parametrize(
    ("score", "reward", "medal"),
    [
        (0.95, 0.9, "gold_medal"),
        (0.9, 0.9, "gold_medal"),  # inclusive
        (0.85, 0.8, "silver_medal"),
        (0.8, 0.8, "silver_medal"),
        (0.7, 0.7, "bronze_medal"),
        (0.65, 0.3, None),
        (0.6, 0.3, None),  # the reward's median milestone is inclusive, MLE-bench's is strict
        (0.1, 0.2, None),
    ],
)
def test_medals_and_reward_follow_each_consumer(
    score: float, reward: float, medal: str | None
) -> None:
    medals = mlebench_medals(score, HIGHER, lower=False)
    assert [name for name, won in medals.items() if won and name != "above_median"] == (
        [medal] if medal else []
    )
    assert medals["above_median"] is (score > 0.6)
    assert sandmle_reward(score, HIGHER, lower=False) == reward
    lower = {tier: -value for tier, value in HIGHER.items()}  # the same ladder, mirrored
    assert sandmle_reward(-score, lower, lower=True) == reward
    assert mlebench_medals(-score, lower, lower=True) == medals


def test_no_score_earns_nothing() -> None:
    assert sandmle_reward(None, HIGHER, lower=False) == 0.0
    assert not any(mlebench_medals(None, HIGHER, lower=False).values())


def test_leaderboard_needs_an_ordered_ladder() -> None:
    manifest = {"task_id": "t", "version": 1, "is_lower_better": True}
    with pytest.raises(BundleError, match="lacks the four thresholds"):
        leaderboard({**manifest, "thresholds": {"gold": 1.0}})
    with pytest.raises(BundleError, match="strictly ordered"):
        leaderboard({**manifest, "thresholds": {**REGRESSION, "gold": 3.0}})


def _perfect(bundle: Path, tmp_path: Path) -> Path:
    """A copy of the answers: for rmse they are a submission that scores 0."""
    copy = tmp_path / "perfect.csv"
    copy.write_bytes((bundle / "prepared" / "private" / "answer.csv").read_bytes())
    return copy


def test_report_of_a_perfect_a_poor_and_an_invalid_submission(bundle: Path, tmp_path: Path) -> None:
    perfect = grade(bundle, _perfect(bundle, tmp_path))
    assert list(perfect.report)[: len(REPORT_FIELDS)] == REPORT_FIELDS
    assert list(perfect.report)[len(REPORT_FIELDS) :] == [
        "sandmle_reward",
        "mledojo_position_score",
    ]
    assert perfect.problem is None
    report = perfect.report
    assert (report["score"], report["gold_medal"], report["any_medal"]) == (0.0, True, True)
    assert (report["sandmle_reward"], report["mledojo_position_score"]) == (0.9, 1.0)
    assert report["is_lower_better"] is True
    assert report["gold_threshold"] == REGRESSION["gold"]

    poor = grade(bundle, bundle / "prepared" / "public" / "sample_submission.csv").report
    assert poor["valid_submission"] and not poor["above_median"] and not poor["any_medal"]
    assert poor["sandmle_reward"] == 0.2 and poor["score"] > REGRESSION["median"]

    broken = tmp_path / "broken.csv"
    broken.write_text("id,y\nT000,1\n")
    invalid = grade(bundle, broken)
    assert invalid.report["submission_exists"] and not invalid.report["valid_submission"]
    assert invalid.report["score"] is None and invalid.report["sandmle_reward"] == 0.0
    assert invalid.problem is not None and "test id(s) missing" in invalid.problem

    answers = grade(bundle, bundle / "prepared" / "private" / "answer.csv")  # the file itself
    assert answers.report["submission_exists"] and not answers.report["valid_submission"]
    assert "hidden answers" in (answers.problem or "")

    missing = grade(bundle, tmp_path / "nothing.csv")
    assert not missing.report["submission_exists"] and "no such CSV" in (missing.problem or "")


def test_grade_refuses_a_tampered_bundle(bundle: Path, tmp_path: Path) -> None:
    answers = bundle / "prepared" / "private" / "answer.csv"
    answers.write_text(answers.read_text() + "T999,1\n")
    with pytest.raises(BundleError, match=r"answer\.csv: sha256 mismatch"):
        grade(bundle, tmp_path / "any.csv")


def test_grade_command(bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    answers = bundle / "prepared" / "private" / "answer.csv"
    assert main(["grade", str(bundle), str(_perfect(bundle, tmp_path)), "--json"]) == EXIT_OK
    assert json.loads(capsys.readouterr().out)["gold_medal"] is True
    assert main(["grade", str(bundle), str(answers)]) == EXIT_FAILED
    assert "hidden answers" in capsys.readouterr().err
    assert main(["grade", str(bundle), str(tmp_path / "none.csv")]) == EXIT_FAILED
    captured = capsys.readouterr()
    assert "no such CSV file" in captured.err and "valid_submission" in captured.out
    answers.write_text("tampered")
    assert main(["grade", str(bundle), str(answers)]) == EXIT_FAILED
    assert "sha256 mismatch" in capsys.readouterr().err
