"""LLM providers end to end: a whole task through each SDK, regenerated without a model, and a
batch stopped by its budget. Recorded HTTP only (tests/fixtures/llm); slow: the sandboxed
ladder runs for real, and the budget test runs the Prefect flow."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sandforge.agents.llm import cost
from sandforge.agents.llm.replay import ReplayTransport, load_cassette, replayed_provider
from sandforge.agents.recipe import Recipe
from sandforge.seeds.registry import load_all
from sandforge.storage.backends import open_store
from sandforge.storage.bundle import verify_bundle
from sandforge.storage.stages import Publish

from sandforge.pipeline import Candidate
from sandforge.regenerate import regenerate
from sandforge.stages import BUILDING, PLANNING

pytestmark = pytest.mark.slow

FIXTURES = Path(__file__).parent / "fixtures" / "llm"
SECRETS = {"ANTHROPIC_API_KEY": "sk-ant-test-SECRET", "OPENAI_API_KEY": "sk-test-SECRET"}
CARDS = {c.id: c for c in load_all()}
TASKS = {  # cassette -> roles called, in order
    "anthropic_task": ["strategist", "designer", "writer", "reviewer"],
    "openai_task": ["strategist", "designer", "designer", "writer", "reviewer"],  # one repair
}


@pytest.fixture(scope="module")
def keys() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in SECRETS.items():
            patch.setenv(name, value)
        patch.delenv("SANDFORGE_PRICES", raising=False)
        yield


@pytest.fixture(scope="module")
def built(
    keys: None, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[Candidate, ReplayTransport]]:
    """Each cassette's task through every stage of the flow, in order, then published."""
    store = open_store(tmp_path_factory.mktemp("store"))
    out = {}
    for name in TASKS:
        cassette = load_cassette(FIXTURES / f"{name}.json")
        provider, transport = replayed_provider(cassette)
        (drawn,) = cassette["candidates"]
        workdir = tmp_path_factory.mktemp(name)
        candidate = Candidate(CARDS[drawn["seed_id"]], provider, 0, drawn["rng_seed"], workdir)
        for stage in (*PLANNING, *BUILDING, Publish(store)):
            candidate = stage(candidate)
        out[name] = (candidate, transport)
    return out


@pytest.mark.parametrize("name", TASKS)
def test_a_full_task_through_each_provider(built, name: str) -> None:
    candidate, transport = built[name]
    assert candidate.rejection is None, candidate.rejection
    assert not transport.pending and not transport.unmatched
    assert type(candidate.recipe) is Recipe  # the offline provider's type, same stages
    manifest = verify_bundle(Path(candidate.bundle_path or ""))
    cassette = load_cassette(FIXTURES / f"{name}.json")
    assert manifest["provider"] == {"name": cassette["provider"], "model": cassette["model"]}
    llm = manifest["llm"]
    assert [c["role"] for c in llm["calls"]] == TASKS[name]
    assert llm["total"] == cost.totals(candidate.usage)
    assert set(llm["prompts"]) == {"strategist", "designer", "writer", "reviewer"}
    assert 0 < llm["total"]["cost_usd"] <= 0.10  # the target per accepted task


@pytest.mark.parametrize("name", TASKS)
def test_no_key_reaches_a_bundle(built, name: str) -> None:
    candidate, _ = built[name]
    bundle = Path(candidate.bundle_path or "")
    for path in bundle.rglob("*"):
        if path.is_file():
            assert not any(s.encode() in path.read_bytes() for s in SECRETS.values()), path
    assert json.dumps(candidate.usage).count("SECRET") == 0


def test_llm_bundles_regenerate_without_a_model(built, monkeypatch: pytest.MonkeyPatch) -> None:
    candidate, transport = built["anthropic_task"]
    for key in SECRETS:
        monkeypatch.delenv(key)  # a call would need one
    seen = len(transport.requests)
    result = regenerate(Path(candidate.bundle_path or ""))
    assert result.rejection is None and result.differing_files == []
    assert result.identical
    assert len(transport.requests) == seen


def test_budget_stops_the_batch_cleanly(
    keys: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two seeds, one task each, budget between one candidate's planning and a wave's cost:
    the first wave (kiln accepted, textile rejected by the reviewer) ends, no third candidate
    is drawn, the accepted task is kept and the summary says why the batch stopped."""
    from prefect.settings import PREFECT_LOCAL_STORAGE_PATH, temporary_settings
    from prefect.testing.utilities import prefect_test_harness
    from sandforge.flows.generate_batch import generate_batch

    roles, transport = replayed_provider(load_cassette(FIXTURES / "anthropic_batch.json"))
    monkeypatch.setattr("sandforge.flows.generate_batch.get_provider", lambda name, model: roles)
    budget = 0.05  # the first plan costs ~$0.01, the whole wave ~$0.11
    results = {PREFECT_LOCAL_STORAGE_PATH: tmp_path / "results"}  # no builds from other runs
    with prefect_test_harness(server_startup_timeout=90), temporary_settings(results):
        summary = generate_batch(
            seeds="spaceship-titanic,leaf-classification",
            per_seed=1,
            provider="anthropic",
            model=roles.model,
            store=str(tmp_path / "store"),
            rng_seed=1,  # a seed whose kiln data the ladder accepts (seed 0 is too noisy)
            budget_usd=budget,
        )
    assert summary["accepted"] == 1 and summary["candidates"] == 2
    assert summary["stopped"] == "budget"
    assert summary["short_of_quota"] == {"leaf-classification": 1}
    assert summary["llm"]["total"]["cost_usd"] >= budget
    (task,) = summary["tasks"]
    verify_bundle(Path(task["path"]))
    assert not transport.pending and not transport.unmatched  # no call after the stop
