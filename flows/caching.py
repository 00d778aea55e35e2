"""What makes a persisted Prefect result reusable, and how results are pickled.

A crashed or repeated batch recomputes the same candidates (rng seeds derive from the batch
seed), so Prefect's result cache lets it skip work already done: keys cover everything a
result depends on, the factory's own code included, so an edit never serves a stale result.

Results are pickled with every `Provider` replaced by a (name, model) reference and rebuilt
with `get_provider` on load: role objects (an LLM client, say) need not be picklable.
Results land in Prefect's result storage (`PREFECT_LOCAL_STORAGE_PATH`, default
`~/.prefect/storage`); workers that share batches must share that folder.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import pickle
from pathlib import Path
from typing import Any

from prefect.context import TaskRunContext
from prefect.serializers import CompressedSerializer, PickleSerializer
from sandforge.agents.roles import Provider

# Source that decides what a stage produces (flows/ too: cheap to over-invalidate).
CODE_PACKAGES = ("agents", "flows", "sandforge", "seeds", "storage", "synthesis", "validators")
REPO = Path(__file__).resolve().parents[1]


@functools.cache
def code_version() -> str:
    """The factory's source digest, computed once per process."""
    return source_digest(REPO)


def source_digest(root: Path) -> str:
    """sha256 over every file of the factory's packages under `root`, bytecode aside.

    Not only code: an edited prompt (.md), price list (.toml) or seed card (.yaml) changes
    what a build makes, so it must not be served an old result.
    """
    digest = hashlib.sha256()
    for package in CODE_PACKAGES:
        for path in sorted((root / package).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(root)).encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()


def cache_key(kind: str, *parts: Any) -> str:
    """`kind` + sha256 of the code version and the JSON of `parts` (pydantic models dumped)."""
    encoded = [p.model_dump(mode="json") if hasattr(p, "model_dump") else p for p in parts]
    text = json.dumps([code_version(), *encoded], sort_keys=True, default=str)
    return f"{kind}-{hashlib.sha256(text.encode()).hexdigest()}"


def provider_ref(provider: Provider) -> list[str]:
    return [provider.name, provider.model]


def dna_key(_: TaskRunContext, parameters: dict[str, Any]) -> str:
    """DNA depends on the card's content and who reads it, not on the batch."""
    return cache_key("dna", parameters["card"], parameters["provider"])


def build_key(_: TaskRunContext, parameters: dict[str, Any]) -> str:
    """A built candidate depends on its card, provider, attempt, rng seed, DNA and plan."""
    c = parameters["candidate"]
    identity = (c.card, provider_ref(c.provider), c.attempt, c.rng_seed, c.dna, c.plan)
    return cache_key("build", *identity)


class _Pickler(pickle.Pickler):
    def persistent_id(self, obj: Any) -> tuple[str, str, str] | None:
        if isinstance(obj, Provider):
            return ("provider", obj.name, obj.model)
        return None


class _Unpickler(pickle.Unpickler):
    def persistent_load(self, pid: Any) -> Provider:
        from sandforge.agents.providers import get_provider

        _, name, model = pid
        return get_provider(name, model)


def dumps(obj: Any) -> bytes:
    buffer = io.BytesIO()
    _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
    return buffer.getvalue()


def loads(blob: bytes) -> Any:
    return _Unpickler(io.BytesIO(blob)).load()


# zlib: a build result is mostly CSV text (~250 KB pickled, ~5x smaller compressed)
RESULT_SERIALIZER = CompressedSerializer(
    serializer=PickleSerializer(picklelib="sandforge.flows.caching"), compressionlib="zlib"
)
