"""SandMLE trainer layout: `<out>/<task_id>/prepared/{public,private}/` plus the ok-lists.

Answers stay in `prepared/private/`, where the bundle's evaluator looks first, so the
agent-visible folder holds none (the trainer's own layout would put answer.csv in public/).
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from sandforge.storage.files import write_atomically
from sandforge.storage.layouts.base import Layout

SAMPLE = 64
OK_LIST = "ok_competitions_sanity.json"
SAMPLE_LIST = f"ok_competitions_sanity_random_{SAMPLE}.json"


class SandMLE(Layout):
    name = "sandmle"

    def __init__(self, sample_seed: int = 0):
        self.sample_seed = sample_seed

    def roots(self, manifest: dict[str, Any]) -> list[str]:
        return [f"{manifest['task_id']}/prepared"]

    def render(self, manifest: dict[str, Any], files: dict[str, bytes]) -> dict[str, bytes]:
        return {f"{manifest['task_id']}/{path}": data for path, data in files.items()}

    def finish(self, out: Path, manifests: list[dict[str, Any]]) -> None:
        """The ok-list names every task of this export; the sample is a seeded subset."""
        ids = sorted(m["task_id"] for m in manifests)
        sample = sorted(random.Random(self.sample_seed).sample(ids, min(SAMPLE, len(ids))))
        write_atomically(out / OK_LIST, (json.dumps(ids, indent=1) + "\n").encode())
        write_atomically(out / SAMPLE_LIST, (json.dumps(sample, indent=1) + "\n").encode())
