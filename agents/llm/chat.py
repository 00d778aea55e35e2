"""One structured question to an LLM, answered as JSON that a pydantic model validates.

Each role calls `Chat.ask` with its prompt, a JSON payload, the answer model and a `finish`
function that turns the validated answer into the pipeline's type. The answer is forced
through each SDK's own structured-output facility (Anthropic tool use, OpenAI function
calling, or for an OpenAI-compatible server the best mechanism it takes, see `structured`);
an answer that is
malformed, fails validation or fails `finish` (raising ValueError) is sent back with the
error, up to `REPAIRS` times, then the candidate is rejected with the reason.

Transient faults (429 with retry-after, 5xx, timeouts, dropped connections) are retried by
the SDK client (`max_retries`, honouring retry-after), then by the stage's Prefect task
retries. Requests the API refuses outright (400, 401, 403, 404, ...) reject the candidate at
once: retrying cannot fix them. A compatible server's refusal of a structured-output
mechanism is probed once per server, with no retries, and the next mechanism taken.
"""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import anthropic
import openai
from openai.types.chat import ChatCompletion
from pydantic import BaseModel, ValidationError
from sandforge.agents.llm import structured
from sandforge.agents.llm.prompts import Prompt

from sandforge.pipeline import Rejected, record_usage

REPAIRS = 2
TRANSIENT_STATUS = frozenset({408, 409, 429})  # and every 5xx
MAX_ERROR_CHARS = 1500

A = TypeVar("A", bound=BaseModel)
T = TypeVar("T")


@dataclass(frozen=True)
class Turn:
    """One reply: the answer's JSON (or why there is none), its tokens, and how to object."""

    data: Any
    error: str | None
    tokens: dict[str, int]
    objection: Callable[[str], list[dict[str, Any]]]  # messages that send an error back
    mechanism: str  # how the answer was forced: structured.MECHANISMS


def describe(error: ValueError) -> str:
    """A validation error as short lines an LLM can act on."""
    if isinstance(error, ValidationError):
        lines = []
        for e in error.errors()[:10]:
            where = ".".join(str(p) for p in e["loc"]) or "answer"
            lines.append(f"{where}: {e['msg'].removeprefix('Value error, ')}")
        text = "\n".join(lines)
    else:
        text = str(error)
    return text[:MAX_ERROR_CHARS]


def _transient(status: int) -> bool:
    return status in TRANSIENT_STATUS or status >= 500


class Chat(ABC):
    """A model behind one provider's API; `ask` is all the roles use."""

    provider: str
    model: str

    def ask(
        self,
        prompt: Prompt,
        payload: dict[str, Any],
        answer: type[A],
        finish: Callable[[A], T],
        schema: dict[str, Any] | None = None,
    ) -> T:
        """The role's answer to `payload`, validated as `answer` and turned into T by `finish`.

        `schema` (default: the answer model's) is what the model is constrained to; roles pass
        one narrowed to the request (enums of the allowed values), so that grammar-constrained
        decoding keeps even a small model within what validation takes.
        """
        schema = schema or answer.model_json_schema()
        messages: list[dict[str, Any]] = [
            {"role": "user", "content": json.dumps(payload, indent=1, default=str)}
        ]
        error = ""
        for _ in range(1 + REPAIRS):
            start = time.perf_counter()
            turn = self._send(prompt, schema, messages)
            record_usage(
                {
                    "provider": self.provider,
                    "model": self.model,
                    "role": prompt.role,
                    "prompt_version": prompt.version,
                    "prompt_sha256": prompt.sha256,
                    **turn.tokens,
                    "structured_output": turn.mechanism,
                    "seconds": round(time.perf_counter() - start, 3),
                }
            )
            try:
                if turn.error:
                    raise ValueError(turn.error)
                return finish(answer.model_validate(turn.data))
            except ValueError as exc:  # pydantic's ValidationError is a ValueError
                error = describe(exc)
                messages += turn.objection(
                    f"Invalid answer:\n{error}\nFix these fields and answer again with the "
                    "whole corrected answer."
                )
        raise Rejected(f"invalid {prompt.role} answer after {REPAIRS} repairs: {error}")

    @abstractmethod
    def _send(
        self, prompt: Prompt, schema: dict[str, Any], messages: list[dict[str, Any]]
    ) -> Turn: ...


def _refused(
    provider: str, role: str, exc: anthropic.APIStatusError | openai.APIStatusError
) -> Rejected:
    return Rejected(f"{provider} API refused the {role} request ({exc.status_code}): {exc.message}")


class AnthropicChat(Chat):
    """Messages API; the answer is the input of a forced tool call. System prompt and tool
    schema form a stable prefix, marked for prompt caching."""

    provider = "anthropic"

    def __init__(self, client: anthropic.Anthropic, model: str):
        self.client = client
        self.model = model

    def _send(self, prompt: Prompt, schema: dict[str, Any], messages: list[dict[str, Any]]) -> Turn:
        try:
            reply = self.client.messages.create(
                model=self.model,
                max_tokens=prompt.max_tokens,
                system=[
                    {"type": "text", "text": prompt.text, "cache_control": {"type": "ephemeral"}}
                ],
                tools=[
                    {"name": prompt.tool, "description": _tool_text(prompt), "input_schema": schema}
                ],
                tool_choice={"type": "tool", "name": prompt.tool},
                messages=messages,
            )
        except anthropic.APIStatusError as exc:
            if _transient(exc.status_code):
                raise
            raise _refused(self.provider, prompt.role, exc) from None
        usage = reply.usage
        tokens = {
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "cache_creation_input_tokens": usage.cache_creation_input_tokens or 0,
            "cache_read_input_tokens": usage.cache_read_input_tokens or 0,
        }
        content = [_block(b) for b in reply.content if b.type in ("text", "tool_use")]
        call = next((b for b in reply.content if b.type == "tool_use"), None)
        error = None
        if reply.stop_reason == "max_tokens":
            error = f"the answer was cut off at {prompt.max_tokens} tokens; answer more briefly"
        elif call is None or call.name != prompt.tool:
            error = f"answer by calling the tool {prompt.tool}"

        def objection(text: str) -> list[dict[str, Any]]:
            reply_to = (
                [{"type": "tool_result", "tool_use_id": call.id, "is_error": True, "content": text}]
                if call is not None
                else [{"type": "text", "text": text}]
            )
            said = content or [{"type": "text", "text": "(no answer)"}]
            return [{"role": "assistant", "content": said}, {"role": "user", "content": reply_to}]

        return Turn(None if call is None else call.input, error, tokens, objection, "tool_call")


def _block(block: Any) -> dict[str, Any]:
    """A reply's content block as request content (only the fields a request may carry)."""
    if block.type == "text":
        return {"type": "text", "text": block.text}
    return {"type": "tool_use", "id": block.id, "name": block.name, "input": block.input}


def _tool_text(prompt: Prompt) -> str:
    return f"Submit the {prompt.role}'s complete answer; the arguments are the answer."


class OpenAIChat(Chat):
    """Chat Completions. OpenAI: the answer is a forced function call. OpenAI-compatible
    servers (vLLM, Ollama, llama.cpp): the answer goes through the best structured-output
    mechanism the server takes, negotiated once per server (`structured`).
    OpenAI caches long prompt prefixes by itself; `prompt_cache_key` groups each role's calls.
    """

    def __init__(self, client: openai.OpenAI, model: str, provider: str = "openai"):
        self.client = client
        self.model = model
        self.provider = provider
        base_url = str(client.base_url)
        self.server = None if provider == "openai" else structured.server(base_url, model)

    def _send(self, prompt: Prompt, schema: dict[str, Any], messages: list[dict[str, Any]]) -> Turn:
        if self.server is None:
            return self._exchange("tool_call", prompt, schema, messages, probe=False)
        while (mechanism := self.server.confirmed) is None:
            with self.server.probing:  # one probe at a time; the others wait for its verdict
                if self.server.confirmed is not None:
                    continue
                mechanism = self.server.mechanism()
                try:
                    turn = self._exchange(mechanism, prompt, schema, messages, probe=True)
                except _Refusal as refusal:
                    structured.refuse(self.server, mechanism, refusal.error)
                    continue
                self.server.confirmed = mechanism
                return turn
        return self._exchange(mechanism, prompt, schema, messages, probe=False)

    def _exchange(
        self,
        mechanism: str,
        prompt: Prompt,
        schema: dict[str, Any],
        messages: list[dict[str, Any]],
        probe: bool,
    ) -> Turn:
        system = prompt.text
        if mechanism in ("json_object", "plain"):
            system += structured.plain_instruction(schema)
        request: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": "system", "content": system}, *messages],
            **structured.request_fields(mechanism, prompt.tool, _tool_text(prompt), schema),
        }
        if self.server is None:
            request |= {
                "max_completion_tokens": prompt.max_tokens,
                "prompt_cache_key": f"sandforge-{prompt.role}",
            }
        else:
            request["max_tokens"] = prompt.max_tokens
        # A compatible server's request runs once: its 500 is a deterministic refusal (llama.cpp
        # answers a request it cannot validate with 500), which the SDK would retry as
        # transient; timeouts and 502-504 go to the stage's retries instead.
        client = self.client if self.server is None else self.client.with_options(max_retries=0)
        try:
            reply = client.chat.completions.create(**request)
        except openai.APIStatusError as exc:
            if probe and structured.refuses(exc, mechanism):
                raise _Refusal(exc) from None
            if _transient(exc.status_code) and (self.server is None or exc.status_code != 500):
                raise
            raise _refused(self.provider, prompt.role, exc) from None
        return self._turn(prompt, reply, mechanism)

    def _turn(self, prompt: Prompt, reply: ChatCompletion, mechanism: str) -> Turn:
        usage = reply.usage
        details = getattr(usage, "prompt_tokens_details", None)
        cached = (getattr(details, "cached_tokens", None) or 0) if details else 0
        tokens = {
            "input_tokens": (usage.prompt_tokens - cached) if usage else 0,
            "output_tokens": usage.completion_tokens if usage else 0,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": cached,
        }
        choice = reply.choices[0]
        message = choice.message
        call = next((c for c in message.tool_calls or [] if c.function.name == prompt.tool), None)
        text = call.function.arguments if call is not None else message.content
        data, error = None, None
        if choice.finish_reason == "length":
            error = f"the answer was cut off at {prompt.max_tokens} tokens; answer more briefly"
        elif self.server is None and call is None:
            error = f"answer by calling the function {prompt.tool}"
        else:
            try:
                data = structured.parse_json(text or "")
            except json.JSONDecodeError as exc:
                error = f"the answer is not valid JSON ({exc})"

        def objection(problem: str) -> list[dict[str, Any]]:
            if call is None:
                return [
                    {"role": "assistant", "content": message.content or ""},
                    {"role": "user", "content": problem},
                ]
            sent = {"name": call.function.name, "arguments": call.function.arguments}
            return [
                {
                    "role": "assistant",
                    "content": "",  # llama.cpp's server refuses null content
                    "tool_calls": [{"id": call.id, "type": "function", "function": sent}],
                },
                {"role": "tool", "tool_call_id": call.id, "content": problem},
            ]

        return Turn(data, error, tokens, objection, mechanism)


class _Refusal(Exception):
    """A probed mechanism the server refused."""

    def __init__(self, error: openai.APIStatusError):
        super().__init__(error.message)
        self.error = error
