"""Which structured-output mechanism an OpenAI-compatible server takes, found by asking.

Servers differ: vLLM takes `response_format` JSON schemas, llama.cpp's Python server answers
500 to them but takes forced tool calls and `json_object` with a `schema`, others take only
plain text. Each request tries the best mechanism the server has not refused, in `MECHANISMS`
order. A mechanism is probed with the SDK's own retries off: a refusal (an error status whose
message names the mechanism's request field) is deterministic, so it is remembered for the
server (base URL + model) for the rest of the process, and the next mechanism is tried at
once, instead of the SDK and the stage retrying a request the server will never take. Until
a mechanism has answered once, one request at a time probes it; after that, requests run
concurrently with the SDK's retries on.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from dataclasses import dataclass, field
from typing import Any

import openai

log = logging.getLogger(__name__)

MECHANISMS = ("json_schema", "tool_call", "json_object", "plain")
# A refusal names the request field it objects to; a 500 or 400 about anything else is not one.
FIELDS = {
    "json_schema": ("response_format", "json_schema"),
    "tool_call": ("tool", "function"),
    "json_object": ("response_format", "json_object", "schema"),
}
REFUSAL_STATUS = frozenset({400, 422, 500, 501})


def refuses(exc: openai.APIStatusError, mechanism: str) -> bool:
    """Whether the server refused `mechanism` itself (not the request's content)."""
    text = f"{exc.message} {json.dumps(exc.body, default=str)}".lower()
    return exc.status_code in REFUSAL_STATUS and any(f in text for f in FIELDS.get(mechanism, ()))


@dataclass
class Server:
    """What one server (base URL + model) took and refused, shared by every thread."""

    refused: dict[str, str] = field(default_factory=dict)  # mechanism -> the server's reason
    confirmed: str | None = None
    probing: threading.Lock = field(default_factory=threading.Lock)

    def mechanism(self) -> str:
        if self.confirmed:
            return self.confirmed
        return next(m for m in MECHANISMS if m not in self.refused)


_servers: dict[tuple[str, str], Server] = {}
_lock = threading.Lock()


def server(base_url: str, model: str) -> Server:
    """The process-wide record of the server at `base_url` serving `model`."""
    with _lock:
        return _servers.setdefault((base_url.rstrip("/"), model), Server())


def forget_servers() -> None:
    """Drop every record (tests, and a server restarted with other options)."""
    with _lock:
        _servers.clear()


def refuse(record: Server, mechanism: str, exc: openai.APIStatusError) -> None:
    reason = f"{exc.status_code}: {exc.message}"[:300]
    with _lock:
        record.refused[mechanism] = reason
    log.warning("the server refused %s structured output (%s); trying the next", mechanism, reason)


def request_fields(mechanism: str, tool: str, description: str, schema: dict) -> dict[str, Any]:
    """What a chat completion request adds to force its answer through `mechanism`."""
    if mechanism == "json_schema":
        named = {"name": tool, "schema": schema}
        return {"response_format": {"type": "json_schema", "json_schema": named}}
    if mechanism == "tool_call":
        function = {"name": tool, "description": description, "parameters": schema}
        return {
            "tools": [{"type": "function", "function": function}],
            "tool_choice": {"type": "function", "function": {"name": tool}},
        }
    if mechanism == "json_object":
        return {"response_format": {"type": "json_object", "schema": schema}}
    return {}


def plain_instruction(schema: dict) -> str:
    """The system prompt's addition when the server constrains nothing: the schema in words."""
    return (
        "\n\nAnswer with one JSON object only, no other text, matching this JSON schema:\n"
        + json.dumps(schema, separators=(",", ":"))
    )


def parse_json(text: str) -> Any:
    """The answer's JSON; with no constraint a model may wrap it in prose or a code fence."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    fenced = re.search(r"```(?:json)?\s*(\{.*\})\s*```", text, re.DOTALL)
    start, end = text.find("{"), text.rfind("}")
    inner = fenced.group(1) if fenced else text[start : end + 1] if 0 <= start < end else text
    return json.loads(inner)  # raises the JSONDecodeError the repair message quotes
