"""Structured-output negotiation with an OpenAI-compatible server, through the real openai SDK.

The server is an injected httpx2 transport that behaves like the llama.cpp Python server:
HTTP 500 naming `response_format` for a json_schema request, forced tool calls answered.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable

import httpx2
import pytest
from sandforge.agents.dna import CardDnaExtractor
from sandforge.agents.llm import cost, structured
from sandforge.agents.providers import get_provider
from sandforge.seeds.registry import load_all

from sandforge.pipeline import Rejected, charging

DNA = CardDnaExtractor().extract(next(c for c in load_all() if c.id == "spaceship-titanic"))
PLAN = {
    "domain": "ceramic_kiln_firing",
    "task_type": "binary",
    "metric": "accuracy",
    "target_names": ["batch_cracked"],
    "rule_family": "interactions",
    "signal_strength": 2.5,
    "n_signal": 4,
    "n_distractors": 4,
    "n_correlated": 1,
    "missing_rate": 0.1,
    "noise": {
        "label_noise": 0.03,
        "target_noise": 0.0,
        "outlier_rate": 0.0,
        "minority_rate": None,
        "shift": 0.0,
        "shift_feature": None,
    },
    "n_train": 150,
    "n_test": 300,
}
LLAMA_CPP_500 = {
    "error": {
        "message": "[{'type': 'literal_error', 'loc': ('body', 'response_format', 'type'), "
        "'msg': \"Input should be 'text' or 'json_object'\", 'input': 'json_schema'}]",
        "type": "internal_server_error",
        "param": None,
        "code": None,
    }
}


def completion(answer: dict, tool: str | None) -> dict:
    """A chat completion in the wire format, the answer as tool call or as content."""
    text = json.dumps(answer)
    message: dict = {"role": "assistant", "content": None if tool else text}
    if tool:
        function = {"name": tool, "arguments": text}
        message["tool_calls"] = [{"id": "call_0", "type": "function", "function": function}]
    finish = "tool_calls" if tool else "stop"
    return {
        "id": "chatcmpl-0",
        "object": "chat.completion",
        "created": 0,
        "model": "smollm2",
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
        "usage": {"prompt_tokens": 900, "completion_tokens": 120, "total_tokens": 1020},
    }


class FakeServer(httpx2.BaseTransport):
    """Answers every request with `answer(body)`; counts what it was sent."""

    def __init__(self, answer: Callable[[dict], httpx2.Response]):
        self.answer = answer
        self.bodies: list[dict] = []
        self._lock = threading.Lock()

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        body = json.loads(request.read())
        with self._lock:
            self.bodies.append(body)
        return self.answer(body)

    def mechanisms(self) -> list[str]:
        out = []
        for body in self.bodies:
            kind = (body.get("response_format") or {}).get("type")
            out.append("tool_call" if "tools" in body else kind or "plain")
        return out


def llama_cpp(body: dict) -> httpx2.Response:
    kind = (body.get("response_format") or {}).get("type")
    if kind == "json_schema":
        return httpx2.Response(500, json=LLAMA_CPP_500)
    tool = body["tool_choice"]["function"]["name"] if "tool_choice" in body else None
    return httpx2.Response(200, json=completion(PLAN, tool))


def text_only(body: dict) -> httpx2.Response:
    """A server that takes neither response_format nor tools (400s naming them)."""
    for name in ("response_format", "tools"):
        if name in body:
            error = {"message": f"unsupported parameter: {name}", "type": "invalid_request_error"}
            return httpx2.Response(400, json={"error": error})
    fenced = f"Here is the plan:\n```json\n{json.dumps(PLAN)}\n```"
    reply = completion(PLAN, None)
    reply["choices"][0]["message"]["content"] = fenced
    return httpx2.Response(200, json=reply)


@pytest.fixture(autouse=True)
def compatible_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SANDFORGE_LLM_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("SANDFORGE_LLM_MAX_RETRIES", "3")
    structured.forget_servers()


def mutate(server: FakeServer, model: str = "smollm2") -> list[dict]:
    provider = get_provider("openai-compatible", model, http_client=httpx2.Client(transport=server))
    with charging([]) as ledger:
        plan = provider.strategist.mutate(DNA, 11, frozenset())
    assert plan.domain == PLAN["domain"]
    return ledger


def test_a_refused_json_schema_is_probed_once_then_tool_calls_are_used() -> None:
    server = FakeServer(llama_cpp)
    ledger = mutate(server)
    # One probe, not 1 + SANDFORGE_LLM_MAX_RETRIES: the SDK's retries are off for it.
    assert server.mechanisms() == ["json_schema", "tool_call"]
    assert ledger[0]["structured_output"] == "tool_call"
    mutate(server)  # the next request, from a new provider in the same process, knows
    assert server.mechanisms() == ["json_schema", "tool_call", "tool_call"]
    record = cost.manifest_record(ledger)
    assert record is not None and record["structured_output"] == {"strategist": "tool_call"}


def test_what_a_server_takes_is_remembered_per_model() -> None:
    server = FakeServer(llama_cpp)
    mutate(server, "smollm2")
    mutate(server, "qwen2.5")  # another model behind the same URL is probed afresh
    assert server.mechanisms() == ["json_schema", "tool_call"] * 2


def test_a_text_only_server_gets_the_schema_in_the_prompt_and_fenced_json_is_read() -> None:
    server = FakeServer(text_only)
    ledger = mutate(server)
    assert server.mechanisms() == ["json_schema", "tool_call", "json_object", "plain"]
    assert ledger[0]["structured_output"] == "plain"
    system = server.bodies[-1]["messages"][0]["content"]
    assert "JSON schema" in system and '"rule_family"' in system


def test_concurrent_requests_probe_a_server_once() -> None:
    server = FakeServer(llama_cpp)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            mutate(server)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert server.mechanisms().count("json_schema") == 1
    assert server.mechanisms().count("tool_call") == 4


def test_a_5xx_that_names_no_mechanism_is_transient_and_forgets_nothing() -> None:
    calls = {"n": 0}

    def flaky(body: dict) -> httpx2.Response:
        calls["n"] += 1
        if calls["n"] == 1:
            return httpx2.Response(503, json={"error": {"message": "loading model"}})
        return llama_cpp(body)

    server = FakeServer(flaky)
    provider = get_provider(
        "openai-compatible", "smollm2", http_client=httpx2.Client(transport=server)
    )
    with pytest.raises(Exception, match="loading model"), charging([]):
        provider.strategist.mutate(DNA, 11, frozenset())  # raised for the stage's retries
    assert server.mechanisms() == ["json_schema"]
    mutate(server)  # the stage's retry probes json_schema again: it was never refused
    assert server.mechanisms() == ["json_schema", "json_schema", "tool_call"]


def test_a_refusal_after_the_mechanism_worked_rejects_without_trying_others() -> None:
    server = FakeServer(llama_cpp)
    mutate(server)
    server.answer = lambda body: httpx2.Response(400, json={"error": {"message": "tools: bad"}})
    with pytest.raises(Rejected, match=r"refused the strategist request \(400\)"):
        mutate(server)
    assert server.mechanisms()[2:] == ["tool_call"]


def test_a_500_from_a_compatible_server_rejects_after_one_request() -> None:
    server = FakeServer(llama_cpp)
    mutate(server)
    error = {"error": {"message": "1 validation error: messages.2.content", "type": "internal"}}
    server.answer = lambda body: httpx2.Response(500, json=error)
    with pytest.raises(Rejected, match=r"refused the strategist request \(500\)"):
        mutate(server)
    assert len(server.bodies) == 3  # not 1 + SANDFORGE_LLM_MAX_RETRIES


def test_a_repair_sends_the_tool_call_back_with_string_content() -> None:
    answers = iter([{**PLAN, "metric": "rmse"}, PLAN])  # rmse does not fit a binary task

    def repaired(body: dict) -> httpx2.Response:
        if (body.get("response_format") or {}).get("type") == "json_schema":
            return httpx2.Response(500, json=LLAMA_CPP_500)
        return httpx2.Response(200, json=completion(next(answers), "submit_plan"))

    server = FakeServer(repaired)
    mutate(server)
    said, objection = server.bodies[-1]["messages"][-2:]
    assert said["content"] == "" and said["tool_calls"][0]["function"]["name"] == "submit_plan"
    assert objection["role"] == "tool" and "metric" in objection["content"]
