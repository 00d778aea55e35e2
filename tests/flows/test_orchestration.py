"""The Prefect glue, without a server but for one tiny flow on ephemeral Prefect: cache-key
functions and the result serializer, stage retries as tasks, roles wrapped for cached DNA and
the LLM limit, and the deployment's form. The plain modules they wire have tests of their
own (test_draws, test_batch, test_cache_keys, test_report)."""

from __future__ import annotations

import typing
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from prefect import flow
from prefect.testing.utilities import prefect_test_harness
from prefect.utilities.callables import parameter_schema
from sandforge.agents.providers import PROVIDERS, get_provider
from sandforge.agents.stages import Design
from sandforge.flows import caching
from sandforge.flows.deployments import DeploySettings
from sandforge.flows.generate_batch import ProviderName, generate_batch
from sandforge.flows.roles import CachedExtractor, LimitedRole, orchestrated
from sandforge.flows.tasks import call_as_task
from sandforge.seeds.registry import load_all
from sandforge.validators.stages import RunBaselines

from sandforge.cache_keys import build_key
from sandforge.pipeline import Candidate, Stage
from sandforge.stages import StageFailed, run_stages

CARD = next(c for c in load_all() if c.id == "spaceship-titanic")


def candidate(attempt: int = 0, **fields: Any) -> Candidate:
    return Candidate(
        card=CARD,
        provider=get_provider(),
        attempt=attempt,
        rng_seed=1000 + attempt,
        workdir=Path(f"/tmp/batch-{attempt}"),
        **fields,
    )


# --- cache keys and results --------------------------------------------------------------


def test_the_build_tasks_key_is_the_candidates_build_key():
    c = candidate()
    assert caching.build_candidate_key(None, {"candidate": c}) == build_key(c)  # type: ignore[arg-type]


def test_dna_key_is_the_card_content_and_provider():
    params = {"card": CARD, "provider": ["offline", "procedural-v1"], "extractor": object()}
    same = {**params, "extractor": object()}
    other = {**params, "card": CARD.model_copy(update={"summary": "different"})}
    assert caching.dna_key(None, params) == caching.dna_key(None, same)  # type: ignore[arg-type]
    assert caching.dna_key(None, params) != caching.dna_key(None, other)  # type: ignore[arg-type]


def test_the_result_serializer_round_trips_a_candidate():
    c = candidate()
    blob = caching.RESULT_SERIALIZER.dumps(c)
    loaded = caching.RESULT_SERIALIZER.loads(blob)
    assert (loaded.label, loaded.provider.name) == (c.label, "offline")


# --- roles ---------------------------------------------------------------------------------


class Flaky(Stage):
    """Raises once, then passes: a transient fault such as a dropped connection."""

    name = "flaky"
    retries = 1

    def __init__(self) -> None:
        self.calls = 0

    def run(self, candidate: Candidate) -> None:
        self.calls += 1
        if self.calls == 1:
            raise ConnectionError("connection reset")


class FlakyWithoutRetries(Flaky):
    name = "flaky_without_retries"
    retries = 0


@pytest.fixture
def prefect_api() -> Iterator[None]:
    """A throwaway Prefect server and database, stopped before pytest closes its output."""
    with prefect_test_harness():
        yield


@pytest.mark.usefixtures("prefect_api")
def test_a_stage_that_can_fail_transiently_is_retried_and_others_fail_at_once():
    retried, not_retried = Flaky(), FlakyWithoutRetries()

    @flow
    def stages() -> Candidate:
        with pytest.raises(StageFailed, match="connection reset"):
            run_stages(candidate(1), (not_retried,), call_as_task)
        return run_stages(candidate(), (retried,), call_as_task)

    assert stages().rejection is None
    assert (retried.calls, not_retried.calls) == (2, 1)


def test_role_stages_are_retried_only_when_the_role_calls_an_llm():
    offline = candidate()
    llm = replace(offline, provider=replace(offline.provider, name="anthropic"))
    assert (Design().retries_for(offline), Design().retries_for(llm)) == (0, 2)
    assert RunBaselines().retries_for(offline) == RunBaselines.retries > 0


def test_offline_roles_get_cached_dna_and_no_llm_limit():
    roles = orchestrated(get_provider())
    assert isinstance(roles.extractor, CachedExtractor)
    assert not any(isinstance(getattr(roles, r), LimitedRole) for r in ("designer", "writer"))
    assert (roles.name, roles.model) == ("offline", "procedural-v1")


def test_llm_roles_hold_a_slot_of_the_global_limit_per_call(monkeypatch: pytest.MonkeyPatch):
    taken: list[tuple[str, int, bool]] = []

    @contextmanager
    def fake_concurrency(names: str, occupy: int, strict: bool) -> Iterator[None]:
        taken.append((names, occupy, strict))
        yield

    class Echo:
        def write(self, recipe: str) -> str:
            return f"wrote {recipe}"

    monkeypatch.setattr("sandforge.flows.roles.concurrency", fake_concurrency)
    llm = replace(get_provider(), name="anthropic", model="claude", writer=Echo())
    roles = orchestrated(llm)
    assert isinstance(roles.writer, LimitedRole) and isinstance(roles.reviewer, LimitedRole)
    assert roles.writer.write("r") == "wrote r"
    assert taken == [("sandforge-llm", 1, True)]
    assert (roles.name, roles.model) == ("anthropic", "claude")


# --- the deployment's form -----------------------------------------------------------------


def test_flow_parameters_make_a_typed_form():
    schema = parameter_schema(generate_batch).model_dump()
    props = schema["properties"]
    assert list(props) == [
        "seeds",
        "per_seed",
        "provider",
        "model",
        "store",
        "rng_seed",
        "budget_usd",
        "max_attempts_per_seed",
        "strict",
        "difficulty",
    ]
    assert props["per_seed"]["type"] == "integer" and props["per_seed"]["minimum"] == 1
    assert props["difficulty"]["enum"] == ["easy", "medium", "hard"]
    assert props["provider"]["enum"] == list(PROVIDERS)
    assert props["rng_seed"]["type"] == "integer"
    assert {"type": "number", "exclusiveMinimum": 0} in props["budget_usd"]["anyOf"]
    assert all(p.get("description") for p in props.values())
    assert schema["required"] == []


def test_provider_dropdown_lists_every_provider():
    assert typing.get_args(ProviderName) == PROVIDERS


def test_deploy_settings_from_the_environment():
    assert DeploySettings.from_env({}) == DeploySettings()
    settings = DeploySettings.from_env(
        {
            "SANDFORGE_POOL": "gpu",
            "SANDFORGE_NIGHTLY": "on",
            "SANDFORGE_NIGHTLY_CRON": "15 3 * * 1-5",
            "SANDFORGE_NIGHTLY_TZ": "Europe/Paris",
            "SANDFORGE_STORE": "s3://bucket/bundles",
        }
    )
    assert (settings.pool, settings.nightly, settings.cron) == ("gpu", True, "15 3 * * 1-5")
    assert (settings.timezone, settings.store) == ("Europe/Paris", "s3://bucket/bundles")
    assert not DeploySettings.from_env({"SANDFORGE_NIGHTLY": "off"}).nightly
