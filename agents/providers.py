"""Choosing who plays the roles. Offline is the default and needs nothing.

LLM providers read their keys from the environment only (the SDKs read ANTHROPIC_API_KEY and
OPENAI_API_KEY themselves); keys are never passed around, logged or written to bundles.

    anthropic          ANTHROPIC_API_KEY; model default claude-sonnet-4-6
    openai             OPENAI_API_KEY; model default gpt-4.1
    openai-compatible  SANDFORGE_LLM_BASE_URL (e.g. http://localhost:8000/v1) and a model;
                       SANDFORGE_LLM_API_KEY if the server wants one
    all LLM providers  SANDFORGE_LLM_TIMEOUT (s, default 120), SANDFORGE_LLM_MAX_RETRIES (4)
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from sandforge.agents.dna import CardDnaExtractor
from sandforge.agents.llm.cost import UnknownPriceError, price_for
from sandforge.agents.llm.designer import LlmDesigner
from sandforge.agents.llm.reviewer import LlmReviewer
from sandforge.agents.llm.strategist import LlmStrategist
from sandforge.agents.llm.writer import LlmWriter
from sandforge.agents.offline.designer import OfflineDesigner
from sandforge.agents.offline.strategist import OfflineStrategist
from sandforge.agents.offline.writer import OfflineWriter
from sandforge.agents.roles import Provider
from sandforge.agents.structural_review import StructuralReviewer

if TYPE_CHECKING:
    import httpx2
    from sandforge.agents.llm.chat import Chat

PROVIDERS = ("offline", "anthropic", "openai", "openai-compatible")
DEFAULT_MODELS = {"anthropic": "claude-sonnet-4-6", "openai": "gpt-4.1"}
KEY_ENV = {"anthropic": "ANTHROPIC_API_KEY", "openai": "OPENAI_API_KEY"}
BASE_URL_ENV = "SANDFORGE_LLM_BASE_URL"
COMPATIBLE_KEY_ENV = "SANDFORGE_LLM_API_KEY"
TIMEOUT_ENV = "SANDFORGE_LLM_TIMEOUT"
RETRIES_ENV = "SANDFORGE_LLM_MAX_RETRIES"


class ProviderError(ValueError):
    """A provider that cannot be used as asked; the message says what to set."""


class UnknownProviderError(ProviderError):
    pass


def get_provider(
    name: str = "offline", model: str | None = None, *, http_client: httpx2.Client | None = None
) -> Provider:
    """The roles of provider `name`. `http_client` lets tests and the bench replay traffic."""
    if name not in PROVIDERS:
        raise UnknownProviderError(f"unknown provider {name!r} (available: {', '.join(PROVIDERS)})")
    if name == "offline":
        return Provider(
            name="offline",
            model=model or "procedural-v1",
            extractor=CardDnaExtractor(),
            strategist=OfflineStrategist(),
            designer=OfflineDesigner(),
            writer=OfflineWriter(),
            reviewer=StructuralReviewer(),
        )
    chat = _chat(name, model, http_client)
    return Provider(
        name=name,
        model=chat.model,
        extractor=CardDnaExtractor(),  # the card declares its structure: nothing to judge
        strategist=LlmStrategist(chat),
        designer=LlmDesigner(chat),
        writer=LlmWriter(chat),
        reviewer=LlmReviewer(chat),
    )


def _number(variable: str, default: float) -> float:
    try:
        return float(os.environ.get(variable) or default)
    except ValueError:
        raise ProviderError(f"{variable} must be a number") from None


def _chat(name: str, model: str | None, http_client: httpx2.Client | None) -> Chat:
    import anthropic  # the SDKs take seconds to import: only LLM runs pay for them
    import openai
    from sandforge.agents.llm.chat import AnthropicChat, OpenAIChat

    options = {
        "timeout": _number(TIMEOUT_ENV, 120),
        "max_retries": int(_number(RETRIES_ENV, 4)),
        "http_client": http_client,
    }
    if name == "openai-compatible":
        base_url = os.environ.get(BASE_URL_ENV)
        if not base_url or not model:
            raise ProviderError(f"openai-compatible needs {BASE_URL_ENV} and --model")
        api_key = os.environ.get(COMPATIBLE_KEY_ENV) or "unused"  # local servers ignore it
        client = openai.OpenAI(base_url=base_url, api_key=api_key, **options)
        return OpenAIChat(client, model, provider=name)
    if not os.environ.get(KEY_ENV[name]):
        raise ProviderError(f"the {name} provider needs {KEY_ENV[name]} in the environment")
    model = model or DEFAULT_MODELS[name]
    try:
        price_for(name, model)  # an unpriced model would make --budget meaningless
    except UnknownPriceError as exc:
        raise ProviderError(str(exc)) from None
    if name == "anthropic":
        return AnthropicChat(anthropic.Anthropic(**options), model)
    return OpenAIChat(openai.OpenAI(**options), model)
