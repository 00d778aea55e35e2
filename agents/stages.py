"""Pipeline stages played by the provider's roles."""

from __future__ import annotations

from sandforge.agents.difficulty import with_difficulty
from sandforge.agents.test_rows import with_test_rows

from sandforge.pipeline import Candidate, Rejected, Stage


class RoleStage(Stage):
    """A stage one of the provider's roles plays: retried only when that role calls an LLM."""

    retries = 2

    def retries_for(self, candidate: Candidate) -> int:
        return self.retries if candidate.provider.calls_llm else 0


class ExtractDna(RoleStage):
    name = "extract_dna"

    def run(self, candidate: Candidate) -> None:
        candidate.dna = candidate.provider.extractor.extract(candidate.card)


class Mutate(RoleStage):
    name = "mutate"

    def run(self, candidate: Candidate) -> None:
        assert candidate.dna is not None
        plan = candidate.provider.strategist.mutate(
            candidate.dna, candidate.rng_seed, candidate.avoid
        )
        plan = with_test_rows(plan, candidate.rng_seed)
        candidate.plan = with_difficulty(plan, candidate.difficulty, candidate.rng_seed)


class Design(RoleStage):
    name = "design"

    def run(self, candidate: Candidate) -> None:
        assert candidate.dna is not None and candidate.plan is not None
        candidate.recipe = candidate.provider.designer.design(
            candidate.dna, candidate.plan, candidate.rng_seed
        )


class Describe(RoleStage):
    name = "describe"

    def run(self, candidate: Candidate) -> None:
        assert candidate.recipe is not None
        candidate.description = candidate.provider.writer.write(candidate.recipe)


class Review(RoleStage):
    name = "review"

    def run(self, candidate: Candidate) -> None:
        assert candidate.recipe is not None and candidate.description is not None
        verdict = candidate.provider.reviewer.review(candidate.recipe, candidate.description)
        candidate.validation["review"] = {"accepted": verdict.accepted, "reason": verdict.reason}
        if not verdict.accepted:
            raise Rejected(verdict.reason)
