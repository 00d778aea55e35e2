"""MLE-bench layout: a competition folder for its registry and a prepared data folder.

    competitions/<id>/   config.yaml description.md grade.py evaluator.py prepare.py
                         leaderboard.csv checksums.yaml     -> copy into mlebench/competitions/
    data/<id>/           <id>.zip raw/{public,private}/ prepared/{public,private}/
                                                            -> pass <out>/data as --data-dir

For probability metrics the answers (class labels) are not a valid submission, so
`prepared/private/gold_submission.csv` holds a perfect one in the submission's format
(validators.evaluator.gold_submission) and config.yaml names it as `dataset.gold_submission`;
without it MLE-bench would check its gold submission with the answers file and fail.

The raw zip holds the final split (MLE-bench would download it from Kaggle; these tasks have
no Kaggle page), prepare.py copies it into prepared/, and checksums.yaml lists the zip's MD5
and the top-level data files' as MLE-bench computes them. The agent-visible folder gets the
data and description.md but not evaluator.py: MLE-bench grades with grade.py. leaderboard.csv
is synthesized from the baseline ladder (storage/leaderboard.py).
"""

from __future__ import annotations

import csv
import hashlib
import io
import zipfile
from typing import Any

import yaml
from sandforge.storage.layouts.base import Layout, agent_split, template
from sandforge.storage.leaderboard import leaderboard
from sandforge.validators.evaluator import config_of, gold_submission
from sandforge.validators.metrics import SubmissionKind, metric_info

from sandforge.bundle_files import PUBLIC

CHECKSUMMED = (".csv", ".json", ".jsonl", ".parquet", ".bson")  # mlebench.data.generate_checksums
NOT_FOR_AGENTS = ("evaluator.py",)
GOLD = "gold_submission.csv"
ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed: the same bundle gives a byte-identical zip


class MLEBench(Layout):
    name = "mlebench"
    root_patterns = ("competitions/{task_id}", "data/{task_id}")

    def render(self, manifest: dict[str, Any], files: dict[str, bytes]) -> dict[str, bytes]:
        task_id = manifest["task_id"]
        competition, data = self.roots(manifest)
        split = agent_split(files, exclude=NOT_FOR_AGENTS)
        if needs_gold(manifest):
            evaluator = config_of(files[f"{PUBLIC}/evaluator.py"].decode())
            split["private"][GOLD] = gold_submission(evaluator, split["private"]["answer.csv"])
        raw_zip = zip_bytes(
            {
                f"{part}/{path}": content
                for part, tree in split.items()
                for path, content in tree.items()
            }
        )
        rendered = {
            f"{competition}/config.yaml": _yaml(config(manifest)),
            f"{competition}/description.md": files[f"{PUBLIC}/description.md"],
            f"{competition}/grade.py": template("mlebench_grade.py"),
            f"{competition}/evaluator.py": files[f"{PUBLIC}/evaluator.py"],
            f"{competition}/prepare.py": template("prepare.py"),
            f"{competition}/leaderboard.csv": leaderboard_csv(manifest),
            f"{competition}/checksums.yaml": _yaml(checksums(split, raw_zip), sort_keys=True),
            f"{data}/{task_id}.zip": raw_zip,
        }
        for part, tree in split.items():
            for path, content in tree.items():
                rendered[f"{data}/raw/{part}/{path}"] = content
                rendered[f"{data}/prepared/{part}/{path}"] = content
        return rendered


def needs_gold(manifest: dict[str, Any]) -> bool:
    """The answers are no submission: probabilities are submitted, labels are the truth."""
    kind = metric_info(manifest["metric"]).submission
    return kind in (SubmissionKind.PROBABILITY, SubmissionKind.CLASS_PROBABILITIES)


def config(manifest: dict[str, Any]) -> dict[str, Any]:
    task_id = manifest["task_id"]
    module = f"mlebench.competitions.{task_id}"
    dataset = {
        "answers": f"{task_id}/prepared/private/answer.csv",
        **(
            {"gold_submission": f"{task_id}/prepared/private/{GOLD}"}
            if needs_gold(manifest)
            else {}
        ),
        "sample_submission": f"{task_id}/prepared/public/sample_submission.csv",
    }
    return {
        "id": task_id,
        "name": (manifest.get("recipe") or {}).get("title") or task_id,
        "competition_type": "simple",
        "awards_medals": True,
        "prizes": None,
        "description": f"mlebench/competitions/{task_id}/description.md",
        "dataset": dataset,
        "grader": {
            "name": manifest.get("metric") or "sandforge",
            "grade_fn": f"{module}.grade:grade",
        },
        "preparer": f"{module}.prepare:prepare",
    }


def leaderboard_csv(manifest: dict[str, Any]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["teamName", "score"])
    writer.writerows((team, repr(score)) for team, score in leaderboard(manifest))
    return buffer.getvalue().encode()


def checksums(split: dict[str, dict[str, bytes]], raw_zip: bytes) -> dict[str, Any]:
    """MD5s as mlebench.data computes them: the zip, top-level data files per folder."""
    return {
        **{
            part: {
                path: _md5(content)
                for path, content in tree.items()
                if "/" not in path and path.endswith(CHECKSUMMED)
            }
            for part, tree in split.items()
        },
        "zip": _md5(raw_zip),
    }


def zip_bytes(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in sorted(entries.items()):
            info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
            info.external_attr = 0o644 << 16
            archive.writestr(info, content, compress_type=zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def _md5(content: bytes) -> str:
    return hashlib.md5(content).hexdigest()


def _yaml(value: dict[str, Any], sort_keys: bool = False) -> bytes:
    return yaml.safe_dump(value, sort_keys=sort_keys, default_flow_style=False).encode()
