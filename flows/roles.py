"""Orchestration wrapped around a provider's roles: cached DNA and a global limit on LLM calls.

The pipeline's stages stay unaware of both: the flow hands them a provider whose extractor
answers from Prefect's result cache (keyed by the card's content), and whose roles, when
they call an LLM, each hold a slot of the `sandforge-llm` global concurrency limit per call
(shared by every flow run and worker on the server).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from prefect import task
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.concurrency.sync import concurrency
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
from sandforge.agents.dna import TaskDNA
from sandforge.agents.roles import DnaExtractor, Provider
from sandforge.flows.caching import RESULT_SERIALIZER, dna_key
from sandforge.seeds.card import SeedCard

from sandforge.cache_keys import provider_ref

LLM_LIMIT = "sandforge-llm"
ROLES = ("extractor", "strategist", "designer", "writer", "reviewer")


def llm_slots() -> int:
    """Concurrent LLM calls allowed across the server (`SANDFORGE_LLM_CONCURRENCY`, 4)."""
    return int(os.environ.get("SANDFORGE_LLM_CONCURRENCY", "4"))


def ensure_llm_limit() -> None:
    """Create the global limit if missing; an operator's later change to it is kept."""
    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(LLM_LIMIT)
        except ObjectNotFound:
            try:
                create = GlobalConcurrencyLimitCreate(name=LLM_LIMIT, limit=llm_slots())
                client.create_global_concurrency_limit(create)
            except ObjectAlreadyExists:  # another run created it meanwhile
                pass


@task(
    name="card_dna",
    cache_key_fn=dna_key,
    persist_result=True,
    result_serializer=RESULT_SERIALIZER,
)
def card_dna(card: SeedCard, provider: list[str], extractor: DnaExtractor) -> TaskDNA:
    return extractor.extract(card)


@dataclass(frozen=True)
class CachedExtractor:
    """An extractor that reads each card once per provider, across batches and workers."""

    inner: DnaExtractor
    provider: list[str]

    def extract(self, card: SeedCard) -> TaskDNA:
        return card_dna(card, self.provider, self.inner)


@dataclass(frozen=True)
class LimitedRole:
    """A role whose every method call holds one slot of the global LLM limit."""

    inner: Any

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.inner, name)
        if name.startswith("_") or not callable(attribute):
            return attribute
        return _limited(attribute)


def _limited(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        with concurrency(LLM_LIMIT, occupy=1, strict=True):
            return method(*args, **kwargs)

    return call


def orchestrated(provider: Provider) -> Provider:
    """The provider the flow hands to stages; name and model (what manifests record) unchanged."""
    if provider.calls_llm:
        limited = {role: LimitedRole(getattr(provider, role)) for role in ROLES}
        provider = replace(provider, **limited)
    return replace(provider, extractor=CachedExtractor(provider.extractor, provider_ref(provider)))
