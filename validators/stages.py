"""Verification stages: data checks, the executed baseline ladder, thresholds, evaluator."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from sandforge.validators.baselines.runner import BaselineFailed, run_ladder, write_task_json
from sandforge.validators.evaluator import evaluator_config, score_submission
from sandforge.validators.noise import RESAMPLES, bootstrap_se
from sandforge.validators.sandbox import PYTHON, SandboxResult, run_sandboxed
from sandforge.validators.thresholds import set_thresholds, steps_of

from sandforge.bundle_files import PRIVATE, PUBLIC, csv_bytes
from sandforge.pipeline import Candidate, Rejected, Stage
from sandforge.tiers import TIERS

CONTRACT_KEYS = {"score", "is_lower_better", *(f"{tier}_threshold" for tier in TIERS)}


def _materialize(candidate: Candidate, root: Path) -> Path:
    """Write the candidate's bundle files under `root`; returns the public folder."""
    for path, data in candidate.files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return root / PUBLIC


class CheckExpectations(Stage):
    name = "expectations"

    def run(self, candidate: Candidate) -> None:
        from sandforge.validators.expectations import validate_task_data  # GX imports slowly

        assert candidate.recipe is not None and candidate.data is not None
        report = validate_task_data(candidate.recipe, candidate.data)
        candidate.validation["expectations"] = report.as_dict()
        if not report.success:
            raise Rejected("data expectations failed: " + "; ".join(report.failed[:3]))


class RunBaselines(Stage):
    """Execute the ladder as untrusted code in the sandbox and score every rung."""

    name = "baselines"
    retries = 1  # a sandbox can fail to start; a rejected task is not retried

    def run(self, candidate: Candidate) -> None:
        recipe, data = candidate.recipe, candidate.data
        assert recipe is not None and data is not None
        root = candidate.workdir / "ladder"
        shutil.rmtree(root, ignore_errors=True)
        public = _materialize(candidate, root)
        answers = root / PRIVATE / "answer.csv"
        work = root / "work"
        work.mkdir()
        for name in ("train.csv", "test.csv", "sample_submission.csv"):
            shutil.copy(public / name, work / name)
        write_task_json(work, recipe)
        config = evaluator_config(recipe, None)
        submissions = {"sample": public / "sample_submission.csv"}
        oracle = root / "oracle.csv"
        oracle.write_bytes(csv_bytes(data.oracle_submission))
        submissions["oracle"] = oracle
        try:
            runs = run_ladder(work)
        except BaselineFailed as exc:
            raise Rejected(str(exc)) from None
        for name, run in runs.items():
            submissions[name] = run.submission
            candidate.baseline_seconds[name] = run.seconds
            candidate.sandbox = run.backend
        candidate.scores = {  # as reported (5 decimals): what every consumer compares
            name: score_submission(config, path, answers, answers.parent)
            for name, path in sorted(submissions.items())
        }


class SetThresholds(Stage):
    """Thresholds from the ladder's scores and the test noise of the pool's score."""

    name = "thresholds"

    def run(self, candidate: Candidate) -> None:
        recipe = candidate.recipe
        assert recipe is not None
        ladder = candidate.workdir / "ladder"
        se = bootstrap_se(
            evaluator_config(recipe, None),
            ladder / "work" / "submission_pool.csv",
            ladder / PRIVATE / "answer.csv",
            recipe.rng_seed,
        )
        candidate.thresholds = set_thresholds(recipe.metric, candidate.scores, se)
        steps = steps_of(candidate.thresholds, candidate.scores["oracle"], se)
        candidate.validation["thresholds"] = {**steps.as_dict(), "resamples": RESAMPLES}


class VerifyEvaluator(Stage):
    """Run the bundle's own evaluator.py as the trainer will: fresh process, cwd = public/."""

    name = "evaluator_contract"

    def run(self, candidate: Candidate) -> None:
        assert candidate.thresholds is not None
        root = candidate.workdir / "contract"
        shutil.rmtree(root, ignore_errors=True)
        public = _materialize(candidate, root)
        submissions = root / "submissions"
        submissions.mkdir()
        sample = (public / "sample_submission.csv").read_bytes()
        (submissions / "sample.csv").write_bytes(sample)
        shutil.copy(candidate.workdir / "ladder" / "oracle.csv", submissions / "oracle.csv")
        lines = sample.splitlines(keepends=True)
        (submissions / "truncated.csv").write_bytes(b"".join(lines[:-1]))
        # The sandbox sees only public/ (writable) plus these: answers and submissions.
        visible = (root / PRIVATE, submissions)
        checks = {}
        for name in ("sample", "oracle"):
            result = self._run(public, submissions / f"{name}.csv", visible)
            output = self._parse(result)
            if output["score"] != candidate.scores[name]:
                raise Rejected(
                    f"evaluator.py scored the {name} submission {output['score']}, the "
                    f"factory {candidate.scores[name]}"
                )
            checks[name] = output["score"]
        if self._run(public, submissions / "truncated.csv", visible).returncode != 1:
            raise Rejected("evaluator.py did not refuse a submission with a missing row")
        checks["rejects_invalid"] = True
        if self._run(public, root / PRIVATE / "answer.csv", visible).returncode != 1:
            raise Rejected("evaluator.py did not refuse the hidden answers as a submission")
        checks["rejects_answers"] = True
        candidate.validation["evaluator_contract"] = checks

    @staticmethod
    def _run(public: Path, submission: Path, visible: tuple[Path, ...]) -> SandboxResult:
        return run_sandboxed(
            [PYTHON, "evaluator.py", "--submission_path", str(submission)],
            workdir=public,
            timeout_s=30,
            readonly_dirs=visible,
        )

    @staticmethod
    def _parse(result: SandboxResult) -> dict:
        if result.returncode != 0:
            raise Rejected(f"evaluator.py failed on a valid submission: {result.stderr[-300:]}")
        try:
            output = json.loads(result.stdout)
        except json.JSONDecodeError as err:
            raise Rejected(
                f"evaluator.py stdout is not one JSON object: {result.stdout[:200]!r}"
            ) from err
        if set(output) != CONTRACT_KEYS:
            raise Rejected(f"evaluator.py printed keys {sorted(output)}")
        return {**output, "score": float(output["score"])}
