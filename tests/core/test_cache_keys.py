"""What makes a stored build reusable (sandforge.cache_keys) and how results are pickled
(sandforge.pickling): keys change with every input of a build and with the factory's source,
providers travel by reference."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

from sandforge.agents.providers import get_provider
from sandforge.seeds.registry import load_all

from sandforge import cache_keys, pickling
from sandforge.pipeline import Candidate, Rejection
from sandforge.stages import StageFailed

CARD = next(c for c in load_all() if c.id == "spaceship-titanic")


def candidate(attempt: int = 0) -> Candidate:
    return Candidate(CARD, get_provider(), attempt, 1000 + attempt, Path(f"/tmp/b-{attempt}"))


def test_build_key_ignores_where_and_what_the_batch_avoided():
    a = candidate()
    b = replace(a, workdir=Path("/elsewhere"), avoid=frozenset({("x", "y", "z")}))
    assert cache_keys.build_key(a) == cache_keys.build_key(b)


def test_build_key_changes_with_every_input_of_the_build():
    base = candidate()
    key = cache_keys.build_key(base)
    for changed in (
        replace(base, rng_seed=base.rng_seed + 1),
        replace(base, attempt=base.attempt + 1),
        replace(base, provider=get_provider("offline", "another-model")),
        replace(base, card=CARD.model_copy(update={"title": "changed"})),
    ):
        assert cache_keys.build_key(changed) != key


def test_build_key_changes_with_the_sandbox_backend(monkeypatch):
    """A batch run under one backend is never served candidates built under another."""
    keys = set()
    for backend in ("rlimit", "bubblewrap"):
        monkeypatch.setenv("SANDFORGE_SANDBOX", backend)
        keys.add(cache_keys.build_key(candidate()))
    assert len(keys) == 2


def test_the_code_version_covers_the_core_and_every_stage_package():
    folders = cache_keys.package_folders()
    assert (folders["sandforge"] / "cli.py").is_file()
    assert (folders["sandforge.agents"] / "llm" / "prices.toml").is_file()
    assert (folders["sandforge.seeds"] / "cards" / "spaceship-titanic.yaml").is_file()
    assert set(folders) == set(cache_keys.CODE_PACKAGES)


def package(root: Path, name: str, files: dict[str, str]) -> Path:
    for path, text in files.items():
        (root / name / path).parent.mkdir(parents=True, exist_ok=True)
        (root / name / path).write_text(text)
    return root / name


def test_source_digest_sees_prompts_and_prices_but_not_bytecode(tmp_path: Path):
    agents = package(tmp_path, "agents", {"llm/prompts/designer.md": "Design a task."})
    (agents / "llm" / "prices.toml").write_text("[sonnet]\ninput = 3.0\n")
    folders = {"sandforge.agents": agents}
    before = cache_keys.source_digest(folders)
    package(agents, "__pycache__", {"roles.cpython-311.pyc": "\0"})
    assert cache_keys.source_digest(folders) == before
    (agents / "llm" / "prompts" / "designer.md").write_text("Design a harder task.")
    assert cache_keys.source_digest(folders) != before


def test_a_wheel_and_a_checkout_of_the_same_source_have_one_digest(tmp_path: Path):
    """A wheel nests the stage packages inside sandforge/ (each file counts once); a checkout
    has them beside it."""
    core, agents = {"cli.py": "main"}, {"roles.py": "roles"}
    checkout = {
        "sandforge.agents": package(tmp_path / "checkout", "agents", agents),
        "sandforge": package(tmp_path / "checkout", "sandforge", core),
    }
    wheel_core = package(tmp_path / "wheel", "sandforge", core)
    wheel = {"sandforge.agents": package(wheel_core, "agents", agents), "sandforge": wheel_core}
    assert cache_keys.source_digest(wheel) == cache_keys.source_digest(checkout)


class Unpicklable:
    """Stands in for an LLM SDK client: a lock cannot be pickled."""

    def __init__(self) -> None:
        self.lock = threading.Lock()


def test_results_pickle_providers_by_reference():
    c = candidate()
    c.provider = replace(get_provider(), strategist=Unpicklable())  # type: ignore[arg-type]
    loaded = pickling.loads(pickling.dumps(c))
    assert (loaded.provider.name, loaded.provider.model) == ("offline", "procedural-v1")
    assert not isinstance(loaded.provider.strategist, Unpicklable)  # rebuilt, not pickled
    assert loaded.card == c.card and loaded.rng_seed == c.rng_seed


def test_stage_failure_survives_pickling_and_becomes_a_rejection():
    error = pickling.loads(pickling.dumps(StageFailed("baselines", "OSError: sandbox")))
    assert error.rejection() == Rejection("baselines", "error: OSError: sandbox")
