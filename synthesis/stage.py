"""Synthesis as a pipeline stage: run the recipe and render the data files of the bundle."""

from __future__ import annotations

from sandforge.synthesis.synthesize import synthesize

from sandforge.bundle_files import PRIVATE, PUBLIC, csv_bytes
from sandforge.pipeline import Candidate, Stage


class Synthesize(Stage):
    name = "synthesize"

    def run(self, candidate: Candidate) -> None:
        assert candidate.recipe is not None
        data = synthesize(candidate.recipe)
        candidate.data = data
        candidate.files.update(
            {
                f"{PUBLIC}/train.csv": csv_bytes(data.train),
                f"{PUBLIC}/test.csv": csv_bytes(data.test),
                f"{PUBLIC}/sample_submission.csv": csv_bytes(data.sample_submission),
                f"{PRIVATE}/answer.csv": csv_bytes(data.answers),
            }
        )
