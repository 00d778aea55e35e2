"""What makes a stored build result reusable: a key over everything the result depends on.

A crashed or repeated batch recomputes the same candidates (rng seeds derive from the batch
seed), so a result cache lets it skip work already done. Keys cover the factory's own source
too, so an edit never serves a stale result.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sandforge.agents.roles import Provider
from sandforge.pipeline import Candidate
from sandforge.validators.sandbox import sandbox_backend

# Packages whose files decide what a stage produces (flows too: cheap to over-invalidate).
CODE_PACKAGES = (
    "sandforge.agents",
    "sandforge.flows",
    "sandforge.seeds",
    "sandforge.storage",
    "sandforge.synthesis",
    "sandforge.validators",
    "sandforge",  # last: in a wheel its folder holds the others, counted once above
)


def package_folders() -> dict[str, Path]:
    """Each code package's folder, wherever it is installed: the repository's root folders
    for a checkout or an editable install, folders inside `sandforge/` for a wheel."""
    folders = {}
    for name in CODE_PACKAGES:
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.submodule_search_locations, name
        folders[name] = Path(next(iter(spec.submodule_search_locations)))
    return folders


@functools.cache
def code_version() -> str:
    """The factory's source digest, computed once per process."""
    return source_digest(package_folders())


def source_digest(folders: Mapping[str, Path]) -> str:
    """sha256 over every file of the given package folders, bytecode aside; a file inside
    two of them (a subpackage inside its parent's folder) counts for the first only.

    Not only code: an edited prompt (.md), price list (.toml) or seed card (.yaml) changes
    what a build makes, so it must not be served an old result.
    """
    seen: set[Path] = set()
    digest = hashlib.sha256()
    for package, folder in folders.items():
        for path in sorted(folder.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path not in seen:
                seen.add(path)
                digest.update(f"{package}/{path.relative_to(folder).as_posix()}".encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()


def cache_key(kind: str, *parts: Any) -> str:
    """`kind` + sha256 of the code version and the JSON of `parts` (pydantic models dumped)."""
    encoded = [p.model_dump(mode="json") if hasattr(p, "model_dump") else p for p in parts]
    text = json.dumps([code_version(), *encoded], sort_keys=True, default=str)
    return f"{kind}-{hashlib.sha256(text.encode()).hexdigest()}"


def provider_ref(provider: Provider) -> list[str]:
    """Who plays the roles, as a key part: (name, model), never the role objects."""
    return [provider.name, provider.model]


def build_key(candidate: Candidate) -> str:
    """A built candidate depends on its card, provider, attempt, rng seed, DNA and plan, and
    on the sandbox backend its ladder runs in (recorded in the manifest: a batch asked to run
    under docker must not be served candidates built under rlimit); not on its working folder
    or on the plans the batch avoided (the plan already did)."""
    c = candidate
    identity = (c.card, provider_ref(c.provider), c.attempt, c.rng_seed, c.dna, c.plan)
    return cache_key("build", *identity, sandbox_backend())
