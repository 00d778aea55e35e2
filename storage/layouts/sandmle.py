"""SandMLE trainer layout: `<out>/<task_id>/prepared/{public,private}/` plus the ok-lists.

By default the answers stay in `prepared/private/`, where the bundle's evaluator reads them, so
the agent-visible folder holds none. The trainer's own layout puts answer.csv in public/
(CONTRACTS.md): `answers_in_public=True` (`export --answers-in-public`) writes that layout,
the evaluator's ANSWERS line pointing beside it. An agent that can read public/ can then copy
the answers into a submission of its own; the evaluator still refuses the file itself or a
link to it, but no evaluator can tell a copy from a perfect prediction. Use it only where the
trainer needs it.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from sandforge.storage.files import write_atomically
from sandforge.storage.layouts.base import Layout
from sandforge.validators.evaluator import with_answers_at

from sandforge.bundle_files import PRIVATE, PUBLIC

SAMPLE = 64
OK_LIST = "ok_competitions_sanity.json"
SAMPLE_LIST = f"ok_competitions_sanity_random_{SAMPLE}.json"
ANSWERS = "answer.csv"


class SandMLE(Layout):
    name = "sandmle"
    root_patterns = ("{task_id}/prepared",)

    def __init__(self, sample_seed: int = 0, answers_in_public: bool = False):
        self.sample_seed = sample_seed
        self.answers_in_public = answers_in_public

    def render(self, manifest: dict[str, Any], files: dict[str, bytes]) -> dict[str, bytes]:
        if self.answers_in_public:
            files = dict(files)
            files[f"{PUBLIC}/{ANSWERS}"] = files.pop(f"{PRIVATE}/{ANSWERS}")
            source = files[f"{PUBLIC}/evaluator.py"].decode()
            files[f"{PUBLIC}/evaluator.py"] = with_answers_at(source, ANSWERS).encode()
        return {f"{manifest['task_id']}/{path}": data for path, data in files.items()}

    def is_complete(self, out: Path, manifest: dict[str, Any]) -> bool:
        """Complete, and with the answers where this export puts them."""
        public_answers = out / manifest["task_id"] / PUBLIC / ANSWERS
        return super().is_complete(out, manifest) and (
            public_answers.is_file() == self.answers_in_public
        )

    def finish(self, out: Path, manifests: list[dict[str, Any]]) -> None:
        """The ok-list names every task of this export; the sample is a seeded subset."""
        ids = sorted(m["task_id"] for m in manifests)
        sample = sorted(random.Random(self.sample_seed).sample(ids, min(SAMPLE, len(ids))))
        write_atomically(out / OK_LIST, (json.dumps(ids, indent=1) + "\n").encode())
        write_atomically(out / SAMPLE_LIST, (json.dumps(sample, indent=1) + "\n").encode())
