"""LLM roles through the real anthropic and openai SDK clients, replaying recorded HTTP.

Every test drives the SDKs over `ReplayTransport` (tests/fixtures/llm/*.json, each API's own
wire format): no network, no key. Fast: no sandbox, no Prefect.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import anthropic
import pytest
from sandforge.agents.dna import CardDnaExtractor, MutationPlan, TaskDNA
from sandforge.agents.llm import cost, structured
from sandforge.agents.llm.designer import DesignAnswer, design_problems
from sandforge.agents.llm.prompts import load_prompt
from sandforge.agents.llm.replay import load_cassette, replay_client, replayed_provider
from sandforge.agents.llm.schemas import plan_schema
from sandforge.agents.llm.strategist import plan_problems
from sandforge.agents.llm.writer import public_facts
from sandforge.agents.providers import ProviderError, get_provider
from sandforge.agents.recipe import Recipe
from sandforge.seeds.registry import load_all

from sandforge.cli import EXIT_BAD_INPUT, main
from sandforge.pipeline import Candidate, Rejected, Stage, charging, record_usage

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/ is not installed
from bench.llm_cost import per_provider, print_report

FIXTURES = Path(__file__).parent / "fixtures" / "llm"
SECRETS = {"ANTHROPIC_API_KEY": "sk-ant-test-SECRET", "OPENAI_API_KEY": "sk-test-SECRET"}
CARDS = {c.id: c for c in load_all()}
DNA: TaskDNA = CardDnaExtractor().extract(CARDS["spaceship-titanic"])


@pytest.fixture(autouse=True)
def llm_env(monkeypatch: pytest.MonkeyPatch) -> None:
    structured.forget_servers()  # what a compatible server took is remembered per process
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SANDFORGE_LLM_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("SANDFORGE_LLM_MAX_RETRIES", "2")
    monkeypatch.delenv("SANDFORGE_PRICES", raising=False)


def replay(name: str):
    return replayed_provider(load_cassette(FIXTURES / f"{name}.json"))


def recorded_answer(name: str, tool: str) -> dict:
    """The first recorded answer to `tool` in a cassette, as the role's JSON."""
    for item in load_cassette(FIXTURES / f"{name}.json")["interactions"]:
        if item["tool"] == tool and "response" in item:
            body = item["response"]["body"]
            if "content" in body:  # Anthropic Messages
                return next(b["input"] for b in body["content"] if b["type"] == "tool_use")
            call = body["choices"][0]["message"]["tool_calls"][0]
            return json.loads(call["function"]["arguments"])
    raise KeyError(tool)


def mutate(provider, dna: TaskDNA = DNA) -> tuple[MutationPlan, list[dict]]:
    with charging([]) as ledger:
        plan = provider.strategist.mutate(dna, 11, frozenset())
    return plan, ledger


# --- faults ------------------------------------------------------------------------------


def test_rate_limit_honours_retry_after_then_succeeds() -> None:
    provider, transport = replay("anthropic_rate_limit")
    start = time.perf_counter()
    plan, ledger = mutate(provider)
    assert time.perf_counter() - start >= 0.95  # retry-after: 1 (the SDK's own backoff: 0.5 s)
    assert plan.domain == "ceramic_kiln_firing"
    assert len(transport.requests) == 2 and not transport.pending
    assert len(ledger) == 1  # a refused request costs no tokens


def test_overload_and_dropped_connection_are_retried() -> None:
    provider, transport = replay("anthropic_overloaded")  # 529, then a disconnect, then 200
    plan, _ = mutate(provider)
    assert plan.target_names == ["batch_cracked"]
    assert len(transport.requests) == 3 and not transport.pending


def test_timeout_is_retried() -> None:
    provider, transport = replay("openai_timeout")
    plan, _ = mutate(provider)
    assert plan.rule_family == "interactions"
    assert len(transport.requests) == 2 and not transport.pending


def test_fault_past_the_sdk_retries_raises_for_the_stage_retries() -> None:
    busy = {
        "tool": "submit_plan",
        "response": {
            "status": 429,
            "headers": {"retry-after-ms": "10"},
            "body": {"type": "error", "error": {"type": "rate_limit_error", "message": "slow"}},
        },
    }
    client, transport = replay_client({"interactions": [busy] * 3})
    provider = get_provider("anthropic", http_client=client)
    with pytest.raises(anthropic.RateLimitError):  # transient: Prefect retries the stage
        mutate(provider)
    assert len(transport.requests) == 3  # 1 + SANDFORGE_LLM_MAX_RETRIES


def test_a_refused_request_rejects_at_once() -> None:
    client, transport = replay_client({"interactions": []})  # answers 400 to everything
    provider = get_provider("anthropic", http_client=client)
    with pytest.raises(Rejected, match=r"anthropic API refused the strategist request \(400\)"):
        mutate(provider)
    assert len(transport.requests) == 1


# --- structured answers and repair --------------------------------------------------------


def test_malformed_json_is_sent_back_and_repaired() -> None:
    provider, transport = replay("compatible_malformed")
    plan, ledger = mutate(provider)
    assert plan.domain == "ceramic_kiln_firing"
    first, second = transport.requests
    assert first["response_format"]["type"] == "json_schema"
    assert first["response_format"]["json_schema"]["schema"] == plan_schema(DNA)
    said, objection = second["messages"][-2:]
    assert said["role"] == "assistant" and said["content"].startswith('{"domain"')
    assert objection["role"] == "user" and "not valid JSON" in objection["content"]
    assert [e["role"] for e in ledger] == ["strategist", "strategist"]  # both calls are paid


def test_invalid_answer_is_repaired_with_the_validation_error() -> None:
    provider, transport = replay("anthropic_repair")  # first plan lacks `noise`
    plan, ledger = mutate(provider)
    assert plan.noise.label_noise == 0.03
    result = transport.requests[1]["messages"][-1]["content"][0]
    assert result["type"] == "tool_result" and result["is_error"] is True
    assert "noise: Field required" in result["content"]
    assert len(ledger) == 2


def test_unrepairable_answer_rejects_the_task_with_the_reason() -> None:
    provider, transport = replay("anthropic_unrepairable")  # rmse, thrice, for a binary task
    with charging([]) as ledger, pytest.raises(Rejected) as rejected:
        provider.strategist.mutate(DNA, 11, frozenset())
    assert str(rejected.value).startswith("invalid strategist answer after 2 repairs: metric")
    assert len(ledger) == 3 and len(transport.requests) == 3


def test_requests_force_the_answer_tool_and_mark_the_prompt_for_caching() -> None:
    provider, transport = replay("anthropic_repair")
    mutate(provider)
    body = transport.requests[-1]
    assert body["tool_choice"] == {"type": "tool", "name": "submit_plan"}
    assert body["tools"][0]["input_schema"] == plan_schema(DNA)
    assert body["system"][0]["cache_control"] == {"type": "ephemeral"}
    assert body["system"][0]["text"] == load_prompt("strategist").text

    provider, transport = replay("openai_task")
    mutate(provider, CardDnaExtractor().extract(CARDS["nomad2018-predict-transparent-conductors"]))
    body = transport.requests[-1]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "submit_plan"}}
    assert body["prompt_cache_key"] == "sandforge-strategist"
    assert body["messages"][0] == {"role": "system", "content": load_prompt("strategist").text}


def test_usage_records_tokens_model_and_prompt_version() -> None:
    provider, _ = replay("anthropic_repair")
    _, ledger = mutate(provider)
    prompt = load_prompt("strategist")
    first = ledger[0]
    assert first["provider"] == "anthropic" and first["model"] == "claude-sonnet-4-6"
    assert (first["prompt_version"], first["prompt_sha256"]) == (prompt.version, prompt.sha256)
    assert first["cache_creation_input_tokens"] > 0 and ledger[1]["cache_read_input_tokens"] > 0
    assert all(isinstance(first[t], int) for t in cost.TOKENS)


# --- role checks ---------------------------------------------------------------------------


def test_strategist_refuses_a_plan_the_batch_already_took() -> None:
    plan = MutationPlan.model_validate(recorded_answer("anthropic_task", "submit_plan"))
    assert plan_problems(plan, DNA, frozenset()) == []
    problems = plan_problems(plan, DNA, frozenset({plan.distinct_key}))
    assert problems and "avoid" in problems[0]


def test_designer_problems_name_what_to_fix() -> None:
    plan = MutationPlan.model_validate(recorded_answer("anthropic_task", "submit_plan"))
    design = DesignAnswer.model_validate(recorded_answer("anthropic_task", "submit_design"))
    assert design_problems(design, plan) == []
    fewer = plan.model_copy(update={"n_signal": 5, "target_names": ["kiln_failed"]})
    problems = design_problems(design, fewer)
    assert any("kiln_failed" in p for p in problems)
    assert any("need 5 with role 'signal', got 4" in p for p in problems)


def test_the_writer_sees_only_public_facts() -> None:
    provider, _ = replay("anthropic_task")
    plan = MutationPlan.model_validate(recorded_answer("anthropic_task", "submit_plan"))
    with charging([]):
        recipe = provider.designer.design(DNA, plan, 11)
    facts = json.dumps(public_facts(recipe))
    for secret in ("signal", "distractor", "correlated", "interactions", "label_noise", "role"):
        assert secret not in facts
    names = [c["name"] for c in public_facts(recipe)["columns"]]
    assert names == sorted(names)
    assert isinstance(recipe, Recipe) and recipe.rule.family == plan.rule_family


def test_structural_review_rejects_before_any_call() -> None:
    provider, transport = replay("anthropic_task")
    plan = MutationPlan.model_validate(recorded_answer("anthropic_task", "submit_plan"))
    with charging([]):
        recipe = provider.designer.design(DNA, plan, 11)
    calls = len(transport.requests)
    verdict = provider.reviewer.review(recipe, "# Kilns\n\nThe data is synthetic.\n")
    assert not verdict.accepted and "synthetic" in verdict.reason
    assert len(transport.requests) == calls


def test_every_prompt_is_versioned() -> None:
    for role, tool in [
        ("strategist", "submit_plan"),
        ("designer", "submit_design"),
        ("writer", "submit_description"),
        ("reviewer", "submit_review"),
    ]:
        prompt = load_prompt(role)
        assert prompt.tool == tool and prompt.version >= 1 and len(prompt.sha256) == 16


# --- providers, costs, ledger ----------------------------------------------------------------


def test_providers_need_their_key_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    with pytest.raises(ProviderError, match="ANTHROPIC_API_KEY"):
        get_provider("anthropic")
    monkeypatch.delenv("SANDFORGE_LLM_BASE_URL")
    with pytest.raises(ProviderError, match="SANDFORGE_LLM_BASE_URL"):
        get_provider("openai-compatible", "qwen2.5-7b-instruct")
    with pytest.raises(ProviderError, match="unknown provider"):
        get_provider("llama")


def test_an_unpriced_model_is_refused_unless_self_hosted() -> None:
    with pytest.raises(ProviderError, match="no list price for model 'gpt-99'"):
        get_provider("openai", "gpt-99")
    assert get_provider("openai-compatible", "my-local-model").model == "my-local-model"
    assert cost.price_for("openai-compatible", "my-local-model") == cost.FREE


def test_prices_match_dated_names_and_can_be_overridden(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cost.price_for("anthropic", "claude-sonnet-4-5-20250929").input == 3.0
    assert cost.price_for("openai", "gpt-4.1-mini-2025-04-14").output == 1.6
    table = tmp_path / "prices.toml"
    table.write_text(
        '[models."claude-sonnet-4-5"]\ninput = 1.0\noutput = 2.0\ncache_write = 0.0\n'
        "cache_read = 0.0\n"
    )
    monkeypatch.setenv("SANDFORGE_PRICES", str(table))
    entry = {
        "provider": "anthropic",
        "model": "claude-sonnet-4-5",
        "input_tokens": 1_000_000,
        "output_tokens": 500_000,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }
    assert cost.call_cost_usd(entry) == pytest.approx(2.0)


def test_stages_charge_llm_calls_to_their_candidate(tmp_path: Path) -> None:
    class Calls(Stage):
        name = "calls"

        def run(self, candidate: Candidate) -> None:
            record_usage({"role": "writer"})

    candidate = Candidate(CARDS["spaceship-titanic"], get_provider(), 0, 1, tmp_path)
    Calls()(candidate)
    record_usage({"role": "outside any stage"})  # charged to no one
    assert candidate.usage == [{"role": "writer"}]


def test_manifest_record_and_batch_report_add_up() -> None:
    provider, _ = replay("anthropic_repair")
    _, ledger = mutate(provider)
    assert cost.manifest_record([]) is None  # offline manifests stay unchanged
    record = cost.manifest_record(ledger)
    assert record is not None
    assert record["total"]["calls"] == 2
    assert record["total"]["cost_usd"] == pytest.approx(sum(c["cost_usd"] for c in record["calls"]))
    assert record["prompts"] == {
        "strategist": {"version": 2, "sha256": load_prompt("strategist").sha256}
    }
    assert record["prices_usd_per_mtok"]["claude-sonnet-4-6"]["output"] == 15.0
    candidate = Candidate(CARDS["spaceship-titanic"], provider, 0, 1, Path("."), usage=ledger)
    spent = cost.candidate_cost_usd(candidate)
    assert spent == pytest.approx(record["total"]["cost_usd"], abs=1e-6)
    report = cost.batch_report([candidate, candidate], accepted=1)
    assert report["by_role"]["strategist"]["calls"] == 4
    assert report["per_accepted_task_usd"] == pytest.approx(2 * spent, abs=1e-6)
    assert SECRETS["ANTHROPIC_API_KEY"] not in json.dumps([record, report])


def test_generate_without_a_key_is_bad_input(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    args = ["generate", "--seeds", "spaceship-titanic", "--provider", "openai", "--store", "x"]
    assert main(args) == EXIT_BAD_INPUT
    assert "OPENAI_API_KEY" in capsys.readouterr().err


def test_generate_refuses_a_non_positive_budget(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["generate", "--budget", "0"])
    assert exit_info.value.code == EXIT_BAD_INPUT
    assert "must be a positive number" in capsys.readouterr().err


def test_bench_charges_every_call_to_the_accepted_tasks(capsys: pytest.CaptureFixture) -> None:
    provider, _ = replay("anthropic_repair")
    _, ledger = mutate(provider)
    runs = [
        {"run": "a", "provider": "anthropic", "candidates": 2, "accepted": 1, "usage": ledger},
        {"run": "b", "provider": "anthropic", "candidates": 1, "accepted": 1, "usage": ledger},
    ]
    (group,) = per_provider(runs)
    assert group["accepted"] == 2 and group["per_accepted_task_by_role"]["strategist"]["calls"] == 2
    recorded = group["per_accepted_task_usd"]["claude-sonnet-4-6"]
    assert recorded == pytest.approx(cost.totals(ledger)["cost_usd"], abs=1e-5)
    assert group["per_accepted_task_usd"]["claude-haiku-4-5"] < recorded
    print_report([group])
    assert "per accepted task" in capsys.readouterr().out


def test_the_recorded_llama_cpp_run_replays_its_negotiation() -> None:
    provider, transport = replay("compatible_smollm2_batch")  # real wire format, SmolLM2-135M
    plan, ledger = mutate(provider)
    first, second = transport.requests
    assert first["response_format"]["type"] == "json_schema" and "tools" in second
    assert ledger[0]["structured_output"] == "tool_call"
    assert plan_problems(plan, DNA, frozenset()) == []  # the small model's plan was valid
