"""Packaging and publishing stages."""

from __future__ import annotations

from sandforge.agents.llm.cost import manifest_record
from sandforge.storage.bundle import build_manifest
from sandforge.storage.catalog import publish_signed
from sandforge.storage.signing import Signer
from sandforge.storage.store import Store
from sandforge.validators.evaluator import evaluator_config, render_evaluator

from sandforge.bundle_files import PUBLIC
from sandforge.pipeline import Candidate, Stage


class Package(Stage):
    """Render description, evaluator and manifest: the bundle, byte for byte."""

    name = "package"

    def run(self, candidate: Candidate) -> None:
        recipe, thresholds = candidate.recipe, candidate.thresholds
        assert recipe is not None and thresholds is not None and candidate.description
        config = evaluator_config(recipe, thresholds.as_dict())
        candidate.files[f"{PUBLIC}/description.md"] = candidate.description.encode()
        candidate.files[f"{PUBLIC}/evaluator.py"] = render_evaluator(config).encode()


class Publish(Stage):
    """Publish the bundle, signed, and its catalog row (the row again if the bundle already
    exists). The key is `signer`, else the local one (storage.signing.default_signer),
    created on first use."""

    name = "publish"
    retries = 2

    def __init__(self, store: Store, signer: Signer | None = None):
        self.store = store
        self.signer = signer

    def run(self, candidate: Candidate) -> None:
        manifest = manifest_for(candidate)
        stored, _ = publish_signed(self.store, manifest, candidate.files, self.signer)
        candidate.bundle_path = self.store.location(stored["task_id"], stored["version"])
        candidate.manifest = stored


def manifest_for(candidate: Candidate, llm: dict | None = None) -> dict:
    """The candidate's manifest. `llm` replaces the record of LLM calls: regeneration makes
    none, so it carries the original bundle's record over."""
    recipe, thresholds = candidate.recipe, candidate.thresholds
    assert recipe is not None and thresholds is not None
    record = llm or manifest_record(candidate.usage)
    return build_manifest(
        candidate.files,
        task_id=recipe.task_id,
        seed_id=candidate.card.id,
        provider={"name": candidate.provider.name, "model": candidate.provider.model},
        domain=recipe.domain,
        modality=recipe.modality,
        task_type=recipe.task_type.value,
        metric=recipe.metric,
        is_lower_better=thresholds.is_lower_better,
        thresholds=thresholds.as_dict(),
        baseline_scores=candidate.scores,
        sandbox=candidate.sandbox,  # the backend that ran the ladder
        validation=candidate.validation,
        distinct_key=list(recipe.distinct_key),
        recipe=recipe.model_dump(mode="json"),
        difficulty=recipe.difficulty,
        **({"crafts": candidate.crafts} if recipe.quirks else {}),
        **({"llm": record} if record else {}),  # offline manifests stay as they were
    )
