"""Rebuild a bundle from its manifest and compare content hashes: the determinism check.

Offline bundles are re-derived entirely. An LLM's answers cannot be re-derived (and must not
cost a call), so for LLM bundles the recipe comes from the manifest and the description and
review verdict are played back from the bundle; synthesis, validation and packaging still
run, so the data, thresholds and evaluator are proven reproducible all the same.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sandforge.agents.providers import get_provider
from sandforge.agents.recipe import Recipe
from sandforge.agents.roles import Provider, Verdict
from sandforge.agents.stages import Design
from sandforge.bundle_files import PUBLIC
from sandforge.pipeline import Candidate
from sandforge.seeds.registry import load_all
from sandforge.stages import BUILDING
from sandforge.storage.bundle import BundleError, read_manifest
from sandforge.storage.stages import manifest_for


@dataclass(frozen=True)
class Regeneration:
    task_id: str
    expected_hash: str
    actual_hash: str | None
    differing_files: list[str]
    rejection: str | None

    @property
    def identical(self) -> bool:
        return self.actual_hash == self.expected_hash


class _PlayedBack:
    """Writer and reviewer played back from the bundle; calls no model. Regeneration starts
    from the recipe, so extraction, mutation and design never run."""

    def __init__(self, description: str, review: dict):
        self.description = description
        self.verdict = Verdict(review["accepted"], review["reason"])

    def write(self, recipe: Recipe) -> str:
        return self.description

    def review(self, recipe: Recipe, description: str) -> Verdict:
        return self.verdict


def _roles(bundle: Path, manifest: dict) -> Provider:
    name, model = manifest["provider"]["name"], manifest["provider"]["model"]
    if name == "offline":
        return get_provider(name, model)
    played = _PlayedBack(
        (bundle / PUBLIC / "description.md").read_text(encoding="utf-8"),
        manifest["validation"]["review"],
    )
    return Provider(name, model, played, played, played, played, played)  # type: ignore[arg-type]


def regenerate(bundle: Path) -> Regeneration:
    manifest = read_manifest(bundle)
    recipe = Recipe.model_validate(manifest["recipe"])
    cards = {c.id: c for c in load_all()}
    if recipe.seed_id not in cards:
        raise BundleError(f"{bundle}: seed card {recipe.seed_id!r} is not installed")
    workdir = Path(tempfile.mkdtemp(prefix="sandforge-regen-"))
    try:
        candidate = Candidate(
            card=cards[recipe.seed_id],
            provider=_roles(bundle, manifest),
            attempt=0,
            rng_seed=recipe.rng_seed,
            workdir=workdir,
            recipe=recipe,
        )
        for stage in BUILDING:
            if not isinstance(stage, Design):  # the recipe is given
                candidate = stage(candidate)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if candidate.rejection is not None:
        reason = f"{candidate.rejection.stage}: {candidate.rejection.reason}"
        return Regeneration(recipe.task_id, manifest["content_hash"], None, [], reason)
    rebuilt = manifest_for(candidate, llm=manifest.get("llm"))
    differing = sorted(
        path
        for path in set(rebuilt["files"]) | set(manifest["files"])
        if rebuilt["files"].get(path) != manifest["files"].get(path)
    )
    return Regeneration(
        recipe.task_id, manifest["content_hash"], rebuilt["content_hash"], differing, None
    )
