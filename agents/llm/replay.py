"""Recorded HTTP exchanges served to the real SDK clients: LLM runs with no network.

A cassette is a JSON file: `provider`, `model`, and `interactions`, each either a recorded
`response` (status, headers, body in the API's own wire format) or a `fault` ("timeout",
"disconnect") raised the way httpx raises it. The SDK clients run unchanged on top (their
retries, retry-after handling, parsing), through `httpx2.Client(transport=ReplayTransport)`.

An interaction serves the first request that matches it: the same answer tool (Anthropic
`tool_choice`, OpenAI `tool_choice` or `response_format` name) and, optionally, every string
in `contains`, so concurrent candidates each get their own answers. An unmatched request gets
a 400, which the roles turn into a rejection that names it.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx2
from sandforge.agents.roles import Provider

FAULTS = {"timeout": httpx2.ReadTimeout, "disconnect": httpx2.RemoteProtocolError}


def load_cassette(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def answer_tool(body: dict[str, Any]) -> str:
    """The tool or schema name a request forces its answer through."""
    choice = body.get("tool_choice") or {}
    if "function" in choice:
        return choice["function"]["name"]
    if "name" in choice:
        return choice["name"]
    return (body.get("response_format") or {}).get("json_schema", {}).get("name", "")


class ReplayTransport(httpx2.BaseTransport):
    def __init__(self, interactions: list[dict[str, Any]]):
        self.pending = list(interactions)
        self.requests: list[dict[str, Any]] = []  # every request body, in order
        self.unmatched: list[str] = []
        self._lock = threading.Lock()

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        text = request.read().decode()
        body = json.loads(text or "{}")
        tool = answer_tool(body)
        with self._lock:
            self.requests.append(body)
            item = next(
                (
                    i
                    for i in self.pending
                    if i.get("tool", tool) == tool and all(s in text for s in i.get("contains", []))
                ),
                None,
            )
            if item is None:
                self.unmatched.append(tool)
                message = f"no recorded response for a {tool or 'plain'} request"
                error = {"type": "invalid_request_error", "message": message}
                return httpx2.Response(400, json={"type": "error", "error": error})
            self.pending.remove(item)
        if "fault" in item:
            raise FAULTS[item["fault"]](f"recorded fault: {item['fault']}", request=request)
        response = item["response"]
        return httpx2.Response(
            response["status"], headers=response.get("headers", {}), json=response["body"]
        )


class RecordingTransport(httpx2.BaseTransport):
    """Passes requests to a real server and keeps each exchange as a cassette interaction,
    with the seconds it took (`recorded_seconds`, which replay ignores)."""

    def __init__(self, inner: httpx2.BaseTransport | None = None):
        self.inner = inner or httpx2.HTTPTransport()
        self.interactions: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        body = json.loads(request.read().decode() or "{}")
        start = time.perf_counter()
        response = self.inner.handle_request(request)
        response.read()
        headers = {"content-type": response.headers.get("content-type", "application/json")}
        item = {
            "tool": answer_tool(body),
            "recorded_seconds": round(time.perf_counter() - start, 3),
            "response": {
                "status": response.status_code,
                "headers": headers,
                "body": response.json(),
            },
        }
        with self._lock:
            self.interactions.append(item)
        return httpx2.Response(response.status_code, headers=headers, content=response.content)


def replay_client(cassette: dict[str, Any]) -> tuple[httpx2.Client, ReplayTransport]:
    transport = ReplayTransport(cassette["interactions"])
    return httpx2.Client(transport=transport), transport


def replayed_provider(cassette: dict[str, Any]) -> tuple[Provider, ReplayTransport]:
    """The cassette's provider whose SDK client reads the cassette instead of the network.

    Keys still come from the environment (any value will do: nothing is sent).
    """
    from sandforge.agents.providers import get_provider

    client, transport = replay_client(cassette)
    return get_provider(cassette["provider"], cassette["model"], http_client=client), transport
