"""MLE-Dojo layout: a competition source folder and a prepared data folder.

    competitions/<id>/info/     description.txt public_leaderboard.csv private_leaderboard.csv
    competitions/<id>/utils/    prepare.py metric.py evaluator.py  -> mledojo/competitions/<id>/
    prepared/<id>/data/public/  description.txt sample_submission.csv train.csv test.csv
    prepared/<id>/data/private/ test_answer.csv public_leaderboard.csv private_leaderboard.csv
    prepared/<id>/raw/          the final split, for utils/prepare.py

Both leaderboards are the synthesized baseline ladder (storage/leaderboard.py; there is one test
set, so public and private are the same board), columns `rank,score`. metric.py scores with
the bundle's own evaluator.py.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from sandforge.storage.layouts.base import Layout, agent_split, template
from sandforge.storage.leaderboard import leaderboard

from sandforge.bundle_files import PUBLIC

BOARDS = ("public_leaderboard.csv", "private_leaderboard.csv")


class MLEDojo(Layout):
    name = "mledojo"
    root_patterns = ("competitions/{task_id}", "prepared/{task_id}")

    def render(self, manifest: dict[str, Any], files: dict[str, bytes]) -> dict[str, bytes]:
        competition, prepared = self.roots(manifest)
        description = files[f"{PUBLIC}/description.md"]
        split = agent_split(files, exclude=("evaluator.py", "description.md"))
        split["public"]["description.txt"] = description
        split["private"]["test_answer.csv"] = split["private"].pop("answer.csv")
        board = leaderboard_csv(manifest)
        rendered = {
            f"{competition}/info/description.txt": description,
            f"{competition}/utils/prepare.py": template("prepare.py"),
            f"{competition}/utils/metric.py": template("mledojo_metric.py"),
            f"{competition}/utils/evaluator.py": files[f"{PUBLIC}/evaluator.py"],
        }
        for name in BOARDS:
            rendered[f"{competition}/info/{name}"] = board
            rendered[f"{prepared}/data/private/{name}"] = board
        for part, tree in split.items():
            for path, content in tree.items():
                rendered[f"{prepared}/raw/{part}/{path}"] = content
                rendered[f"{prepared}/data/{part}/{path}"] = content
        return rendered


def leaderboard_csv(manifest: dict[str, Any]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["rank", "score"])
    rows = leaderboard(manifest)
    writer.writerows((rank, repr(score)) for rank, (_, score) in enumerate(rows, 1))
    return buffer.getvalue().encode()
