"""The orchestration's pieces, without a server but for one tiny flow on ephemeral Prefect:
cache keys, result pickling, drawing candidates, stage retries, roles wrapped for caching and
the LLM limit, the deployment form, batch summaries, artifacts and the report."""

from __future__ import annotations

import threading
import typing
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from prefect import flow
from prefect.testing.utilities import prefect_test_harness
from prefect.utilities.callables import parameter_schema
from sandforge.agents.providers import PROVIDERS, get_provider
from sandforge.agents.stages import Design
from sandforge.flows import caching
from sandforge.flows.artifacts import summary_markdown, task_rows, write_report
from sandforge.flows.deployments import DeploySettings
from sandforge.flows.generate_batch import (
    PLANNING,
    STAGE_ORDER,
    ProviderName,
    Waves,
    generate_batch,
)
from sandforge.flows.roles import CachedExtractor, LimitedRole, orchestrated
from sandforge.flows.tasks import StageFailed, run_stages
from sandforge.seeds.registry import load_all
from sandforge.storage.local import LocalStore
from sandforge.validators.stages import RunBaselines

from sandforge.pipeline import Candidate, Rejection, Stage
from sandforge.report import render_report
from sandforge.summary import funnel

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


def test_build_key_ignores_where_and_what_the_batch_avoided():
    a = candidate()
    b = replace(a, workdir=Path("/elsewhere"), avoid=frozenset({("x", "y", "z")}))
    assert caching.build_key(None, {"candidate": a}) == caching.build_key(None, {"candidate": b})  # type: ignore[arg-type]


def test_build_key_changes_with_every_input_of_the_build():
    base = candidate()
    key = caching.build_key(None, {"candidate": base})  # type: ignore[arg-type]
    for changed in (
        replace(base, rng_seed=base.rng_seed + 1),
        replace(base, attempt=base.attempt + 1),
        replace(base, provider=get_provider("offline", "another-model")),
        replace(base, card=CARD.model_copy(update={"title": "changed"})),
    ):
        assert caching.build_key(None, {"candidate": changed}) != key  # type: ignore[arg-type]


def test_dna_key_is_the_card_content_and_provider():
    params = {"card": CARD, "provider": ["offline", "procedural-v1"], "extractor": object()}
    same = {**params, "extractor": object()}
    other = {**params, "card": CARD.model_copy(update={"summary": "different"})}
    assert caching.dna_key(None, params) == caching.dna_key(None, same)  # type: ignore[arg-type]
    assert caching.dna_key(None, params) != caching.dna_key(None, other)  # type: ignore[arg-type]


def test_code_version_covers_the_factory_source():
    assert caching.code_version() == caching.source_digest(caching.REPO)


def test_source_digest_sees_prompts_and_prices_but_not_bytecode(tmp_path: Path):
    prompt = tmp_path / "agents" / "llm" / "prompts" / "designer.md"
    prompt.parent.mkdir(parents=True)
    prompt.write_text("Design a task.")
    (tmp_path / "agents" / "llm" / "prices.toml").write_text("[sonnet]\ninput = 3.0\n")
    before = caching.source_digest(tmp_path)
    (tmp_path / "agents" / "__pycache__").mkdir()
    (tmp_path / "agents" / "__pycache__" / "roles.cpython-311.pyc").write_bytes(b"\0")
    assert caching.source_digest(tmp_path) == before
    prompt.write_text("Design a harder task.")
    assert caching.source_digest(tmp_path) != before


class Unpicklable:
    """Stands in for an LLM SDK client: a lock cannot be pickled."""

    def __init__(self) -> None:
        self.lock = threading.Lock()


def test_results_pickle_providers_by_reference():
    c = candidate()
    c.provider = replace(get_provider(), strategist=Unpicklable())  # type: ignore[arg-type]
    loaded = caching.loads(caching.dumps(c))
    assert (loaded.provider.name, loaded.provider.model) == ("offline", "procedural-v1")
    assert not isinstance(loaded.provider.strategist, Unpicklable)  # rebuilt, not pickled
    assert loaded.card == c.card and loaded.rng_seed == c.rng_seed
    blob = caching.RESULT_SERIALIZER.dumps(c)
    assert caching.RESULT_SERIALIZER.loads(blob).label == c.label


def test_stage_failure_survives_pickling_and_becomes_a_rejection():
    error = caching.loads(caching.dumps(StageFailed("baselines", "OSError: sandbox")))
    assert error.rejection() == Rejection("baselines", "error: OSError: sandbox")


# --- drawing candidates ------------------------------------------------------------------

SECOND_CARD = next(c for c in load_all() if c.id == "playground-series-s3e18")


def plan_directly(candidate: Candidate) -> Candidate:
    """The planning stages without Prefect: Waves only needs their output."""
    for stage in PLANNING:
        candidate = stage(candidate)
    return candidate


def waves(tmp_path: Path, per_seed: int = 1, cap: int = 3) -> Waves:
    return Waves([CARD, SECOND_CARD], get_provider(), 7, per_seed, cap, tmp_path, plan_directly)


def labels(drawn: Iterator[Candidate]) -> list[str]:
    return [c.label for c in drawn]


def settled(candidate: Candidate, accepted: bool) -> Candidate:
    return replace(candidate, rejection=None if accepted else Rejection("thresholds", "flat"))


def never() -> bool:
    return False


def test_a_replacement_is_drawn_while_later_seeds_still_build(tmp_path: Path):
    batch = waves(tmp_path)
    first, second = batch.draw(never)
    assert [first.label, second.label] == ["spaceship-titanic#0", "playground-series-s3e18#0"]
    assert labels(batch.draw(never)) == []  # the first seed's candidate is in flight
    batch.settle(settled(first, accepted=False))
    (replacement,) = batch.draw(never)  # the second seed's build has not finished
    assert replacement.label == "spaceship-titanic#1"
    assert first.plan.distinct_key in replacement.avoid
    assert second.plan.distinct_key in replacement.avoid
    batch.settle(settled(replacement, accepted=True))
    assert labels(batch.draw(never)) == []  # the second seed has not settled: no verdict yet
    batch.settle(settled(second, accepted=True))
    assert labels(batch.draw(never)) == []
    assert batch.short_of_quota() == {}


def test_draws_do_not_depend_on_the_order_builds_finish(tmp_path: Path):
    def run(order: list[int]) -> list[tuple[str, Any]]:
        batch = waves(tmp_path / "-".join(map(str, order)), per_seed=2, cap=4)
        wave = list(batch.draw(never))
        drawn = list(wave)
        for i in order:  # every first-wave candidate of the first seed is rejected
            batch.settle(settled(wave[i], accepted=wave[i].card.id != CARD.id))
            drawn += batch.draw(never)
        for candidate in drawn[len(wave) :]:
            batch.settle(settled(candidate, accepted=True))
        drawn += batch.draw(never)
        return [(c.label, c.plan) for c in drawn]

    in_order, reversed_order = run([0, 1, 2, 3]), run([3, 2, 1, 0])
    assert in_order == reversed_order
    assert [label for label, _ in in_order][4:] == ["spaceship-titanic#2", "spaceship-titanic#3"]


def test_the_attempt_cap_ends_drawing(tmp_path: Path):
    batch = waves(tmp_path)
    for _ in range(3):
        for candidate in list(batch.draw(never)):
            batch.settle(settled(candidate, accepted=candidate.card.id != CARD.id))
    assert labels(batch.draw(never)) == []
    assert batch.attempts == {CARD.id: 3, SECOND_CARD.id: 1}
    assert batch.short_of_quota() == {CARD.id: 1}


def test_an_exhausted_budget_stops_drawing(tmp_path: Path):
    batch = waves(tmp_path)
    calls = iter([False, True])
    assert labels(batch.draw(lambda: next(calls))) == ["spaceship-titanic#0"]
    assert batch.stopped == "budget"
    assert labels(batch.draw(never)) == []


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
            run_stages(candidate(1), (not_retried,))
        return run_stages(candidate(), (retried,))

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
    ]
    assert props["per_seed"]["type"] == "integer" and props["per_seed"]["minimum"] == 1
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


# --- summaries, artifacts, report ----------------------------------------------------------


def test_funnel_counts_what_entered_and_left_each_stage():
    rejected = [
        candidate(0, rejection=Rejection("review", "leak")),
        candidate(1, rejection=Rejection("thresholds", "flat ladder")),
        candidate(2, rejection=Rejection("thresholds", "flat ladder")),
    ]
    rows = {r["stage"]: r for r in funnel([*rejected, candidate(3)], STAGE_ORDER)}
    assert rows["extract_dna"] == {"stage": "extract_dna", "entered": 4, "rejected": 0}
    assert rows["review"]["rejected"] == 1
    assert rows["thresholds"] == {"stage": "thresholds", "entered": 3, "rejected": 2}
    assert rows["publish"] == {"stage": "publish", "entered": 1, "rejected": 0}


def sample_summary(task_id: str = "reef-bleaching-1") -> dict[str, Any]:
    task = {
        "task_id": task_id,
        "version": 1,
        "seed_id": "spaceship-titanic",
        "domain": "coral_reef",
        "modality": "tabular",
        "task_type": "binary",
        "metric": "log_loss",
        "is_lower_better": True,
        "rule_family": "logistic",
        "thresholds": {"median": 0.6, "bronze": 0.5, "silver": 0.45, "gold": 0.4},
        "scores": {"sample": 0.69, "trivial": 0.69, "simple": 0.52, "strong": 0.5, "oracle": 0.3},
        "path": "/store/x/1",
        "reused": True,
    }
    return {
        "candidates": 3,
        "accepted": 1,
        "rejected": 2,
        "reused": 1,
        "acceptance_rate": 0.333,
        "funnel": [
            {"stage": "review", "entered": 3, "rejected": 1},
            {"stage": "thresholds", "entered": 2, "rejected": 1},
            {"stage": "publish", "entered": 1, "rejected": 0},
        ],
        "rejections_by_stage": {"review": {"leak": 1}, "thresholds": {"flat ladder": 1}},
        "tasks": [task],
        "diversity": {
            "domain": {"coral_reef": 1},
            "modality": {"tabular": 1},
            "task_type": {"binary": 1},
            "metric": {"log_loss": 1},
        },
        "short_of_quota": {},
        "median_stage_seconds": {"review": 0.01, "thresholds": 0.002, "publish": 0.05},
    }


def test_task_table_has_thresholds_and_baseline_scores():
    (row,) = task_rows(sample_summary())
    assert row["task"] == "reef-bleaching-1@1"
    assert (row["median"], row["gold"]) == (0.6, 0.4)
    assert (row["score_trivial"], row["score_oracle"]) == (0.69, 0.3)


def test_summary_markdown_has_funnel_reasons_diversity_and_the_report_link():
    text = summary_markdown(sample_summary(), "file:///store/_reports/r.html")
    assert "(file:///store/_reports/r.html)" in text
    assert "| thresholds | 2 | 1 |" in text
    assert "| review | leak | 1 |" in text
    for field in ("domain", "modality", "task type", "metric"):
        assert f"| {field} | count |" in text


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        assert not (tag in ("script", "img", "link") or any(k == "src" for k, _ in attrs))


def test_report_is_one_self_contained_file_with_plots():
    html = render_report(sample_summary("evil<script>"), "batch", {"seeds": "all"})
    parser = _Collect()
    parser.feed(html)
    assert "evil&lt;script&gt;" in html
    svgs = html.split("<svg")[1:]
    assert len(svgs) == 1 + 1 + 1 + 4  # funnel, stage times, one ladder, four diversity charts
    for svg in svgs:
        ET.fromstring("<svg" + svg.split("</svg>")[0] + "</svg>")  # well-formed
    assert "0.05 s" in html  # publish's median time
    for heading in ("Funnel", "Stage times", "Threshold ladders", "Diversity", "Tasks"):
        assert f"<h2>{heading}</h2>" in html


def test_report_lands_beside_the_bundles_without_becoming_one(tmp_path: Path):
    store = LocalStore(tmp_path)
    url = write_report(store, "20260101T000000Z-run", "<html></html>")
    assert url == (tmp_path / "_reports" / "20260101T000000Z-run.html").as_uri()
    assert store.latest_versions() == []


def test_report_lands_beside_bundles_in_an_s3_store(s3_url: str):
    from sandforge.storage.s3 import S3Store

    store = S3Store.from_url(s3_url)
    url = write_report(store, "run", "<html>report</html>")
    assert url == f"{s3_url}/_reports/run.html"
    key = url.removeprefix(f"s3://{store.bucket}/")
    got = store.client.get_object(Bucket=store.bucket, Key=key)
    assert got["Body"].read() == b"<html>report</html>" and got["ContentType"] == "text/html"
    assert store.latest_versions() == []
