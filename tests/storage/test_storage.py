"""Bundles: content hashing, atomic publishing to the local store, verification, export."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest
from sandforge.agents.providers import get_provider
from sandforge.agents.stages import Describe, Design, ExtractDna, Mutate, Review
from sandforge.seeds.card import load_card
from sandforge.seeds.registry import CARDS_DIR
from sandforge.storage.backends import open_store
from sandforge.storage.bundle import (
    FORMAT,
    MANIFEST,
    PUBLIC_FILES,
    BundleError,
    build_manifest,
    content_hash,
    created_at,
    read_manifest,
    safe_task_id,
    verify_bundle,
)
from sandforge.storage.layouts import get_layout
from sandforge.storage.layouts.sandmle import SAMPLE as SANDMLE_SAMPLE
from sandforge.storage.local import LocalStore
from sandforge.storage.pulling import pull, select
from sandforge.storage.signing import default_signer
from sandforge.storage.stages import Package, manifest_for
from sandforge.synthesis.stage import Synthesize

from sandforge.bundle_files import PRIVATE, PUBLIC
from sandforge.pipeline import Candidate
from sandforge.tiers import Thresholds

EPOCH = "1700000000"
EPOCH_ISO = "2023-11-14T22:13:20+00:00"
Bundle = tuple[dict[str, Any], dict[str, bytes]]


@functools.cache
def _candidate(rng_seed: int) -> Candidate:
    """A real candidate up to packaging; thresholds and scores stand in for the sandbox run.

    None of these stages touches the workdir, and the manifest (with its timestamp) is built
    per test from the cached candidate, so caching only saves time.
    """
    card = load_card(CARDS_DIR / "spaceship-titanic.yaml")
    candidate = Candidate(
        card=card, provider=get_provider(), attempt=0, rng_seed=rng_seed, workdir=Path("unused")
    )
    for stage in (ExtractDna(), Mutate(), Design(), Synthesize(), Describe(), Review()):
        candidate = stage(candidate)
    assert candidate.rejection is None, candidate.rejection
    lower = candidate.recipe.metric == "log_loss"  # type: ignore[union-attr]
    ladder = (0.6, 0.5, 0.45, 0.4) if lower else (0.6, 0.7, 0.75, 0.8)
    candidate.thresholds = Thresholds(*ladder, is_lower_better=lower)
    candidate.scores = {"trivial": 0.5, "simple": 0.7, "strong": 0.69, "oracle": 0.9}
    candidate = Package()(candidate)
    assert candidate.rejection is None, candidate.rejection
    return candidate


def make_bundle(rng_seed: int = 7, **extra: Any) -> Bundle:
    candidate = _candidate(rng_seed)
    manifest = manifest_for(candidate)
    if extra:  # e.g. another task id: rebuild the manifest over the same files
        fields = {k: v for k, v in manifest.items() if k not in {"format", "sandforge_version"}}
        for key in ("files", "created_at", "content_hash"):
            fields.pop(key)
        manifest = build_manifest(candidate.files, **{**fields, **extra})
    return manifest, dict(candidate.files)


@pytest.fixture
def epoch(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)
    return EPOCH


@pytest.fixture
def bundle(epoch: str) -> Bundle:
    return make_bundle()


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "store")


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


# --- manifest and content hash -----------------------------------------------------------


def test_manifest_lists_every_file_with_its_hash(bundle: Bundle) -> None:
    manifest, files = bundle
    assert manifest["format"] == FORMAT
    assert set(manifest["files"]) == set(files)
    assert {f"{PUBLIC}/{name}" for name in PUBLIC_FILES} | {f"{PRIVATE}/answer.csv"} == set(files)
    for path, entry in manifest["files"].items():
        assert entry["bytes"] == len(files[path])
        assert entry["sha256"] == hashlib.sha256(files[path]).hexdigest()
    assert "version" not in manifest
    assert manifest["content_hash"] == content_hash(manifest)


def test_content_hash_ignores_created_at_and_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1000000000")
    first, _ = make_bundle()
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1900000000")
    second, _ = make_bundle()
    assert first["created_at"] != second["created_at"]
    assert first["content_hash"] == second["content_hash"]
    assert content_hash({**first, "version": 9}) == first["content_hash"]


def test_content_hash_covers_files_and_fields(bundle: Bundle) -> None:
    manifest, files = bundle
    fields = {k: manifest[k] for k in ("task_id", "metric", "thresholds", "recipe")}
    base = build_manifest(files, **fields)
    path = f"{PUBLIC}/train.csv"
    changed_file = build_manifest({**files, path: files[path] + b"\n"}, **fields)
    changed_field = build_manifest(files, **{**fields, "thresholds": {"gold": 1.0}})
    hashes = {base["content_hash"], changed_file["content_hash"], changed_field["content_hash"]}
    assert len(hashes) == 3


def test_rebuilding_a_candidate_gives_the_same_manifest(epoch: str) -> None:
    fresh = [_candidate.__wrapped__(7) for _ in range(2)]  # bypass the cache
    assert fresh[0].files == fresh[1].files
    assert manifest_for(fresh[0]) == manifest_for(fresh[1]) == make_bundle()[0]


def test_source_date_epoch_sets_created_at(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)
    assert created_at() == EPOCH_ISO
    monkeypatch.delenv("SOURCE_DATE_EPOCH")
    moment = dt.datetime.fromisoformat(created_at())
    assert moment.tzinfo is not None and moment.microsecond == 0
    assert abs((dt.datetime.now(dt.UTC) - moment).total_seconds()) < 60


def test_source_date_epoch_makes_published_bundles_identical(tmp_path: Path, epoch: str) -> None:
    stores = [LocalStore(tmp_path / "one"), LocalStore(tmp_path / "two")]
    for store in stores:  # two independent pipeline runs, one per store
        candidate = _candidate.__wrapped__(7)
        manifest, files = manifest_for(candidate), candidate.files
        assert manifest["created_at"] == EPOCH_ISO
        assert store.publish(manifest, files) == (1, True)
    trees = [_tree(s.bundle_path(manifest["task_id"], 1)) for s in stores]
    assert trees[0] == trees[1]
    assert MANIFEST in trees[0]


# --- publishing --------------------------------------------------------------------------


def test_publish_creates_a_complete_versioned_bundle(store: LocalStore, bundle: Bundle) -> None:
    manifest, files = bundle
    assert store.publish(manifest, files) == (1, True)
    task_id = manifest["task_id"]
    folder = store.root / task_id / "1"
    assert folder == store.bundle_path(task_id, 1)
    assert _tree(folder) == {**files, MANIFEST: _tree(folder)[MANIFEST]}
    written = verify_bundle(folder)
    assert written == default_signer().sign({**manifest, "version": 1})  # signed, deterministic
    assert [p.name for p in (store.root / task_id).iterdir()] == ["1"]  # no staging left
    assert store.versions(task_id) == [1]
    assert store.latest() == [folder]


def test_republishing_identical_content_is_a_no_op(
    store: LocalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1000000000")
    manifest, files = make_bundle()
    assert store.publish(manifest, files) == (1, True)
    before = _tree(store.root)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1900000000")  # same content, later timestamp
    again, files_again = make_bundle()
    assert again["created_at"] != manifest["created_at"]
    assert store.publish(again, files_again) == (1, False)
    assert _tree(store.root) == before


def test_new_content_for_a_task_gets_a_new_version(store: LocalStore, epoch: str) -> None:
    manifest, files = make_bundle()
    task_id = manifest["task_id"]
    store.publish(manifest, files)
    v1 = _tree(store.bundle_path(task_id, 1))
    path = f"{PUBLIC}/description.md"
    changed = {**files, path: files[path] + b"\nRevised.\n"}
    fields = {k: manifest[k] for k in ("task_id", "metric", "recipe")}
    second = build_manifest(changed, **fields)
    assert store.publish(second, changed) == (2, True)
    assert store.versions(task_id) == [1, 2]
    assert _tree(store.bundle_path(task_id, 1)) == v1  # published versions never change
    assert verify_bundle(store.bundle_path(task_id, 2))["version"] == 2
    assert store.latest() == [store.bundle_path(task_id, 2)]
    # republishing the first content matches version 1, not a third version
    assert store.publish(manifest, files) == (1, False)
    assert store.versions(task_id) == [1, 2]


def test_failed_publish_leaves_nothing_behind(store: LocalStore, bundle: Bundle) -> None:
    manifest, files = bundle
    broken = {**files, f"{PUBLIC}/train.csv/oops": b"x"}  # a file under a file: cannot write
    with pytest.raises((OSError, BundleError)):  # refused up front or failing mid-write
        store.publish(manifest, broken)
    task_folder = store.root / manifest["task_id"]
    assert store.versions(manifest["task_id"]) == []
    # neither a version nor a staging folder
    assert not task_folder.exists() or list(task_folder.iterdir()) == []
    assert store.latest() == []
    assert store.publish(manifest, files) == (1, True)


UNSAFE_IDS = ["../x", "..", ".hidden", "a/b", "/abs", "has space", "", "x" * 101, "a..b", "x\n"]


@pytest.mark.parametrize("task_id", UNSAFE_IDS, ids=lambda t: repr(t)[:20])
def test_unsafe_task_ids_are_refused(
    tmp_path: Path, epoch: str, store: LocalStore, task_id: str
) -> None:
    with pytest.raises(BundleError, match="unsafe task id") as info:
        safe_task_id(task_id)
    assert repr(task_id) in str(info.value)
    manifest, files = make_bundle(task_id=task_id)
    with pytest.raises(BundleError, match="unsafe task id"):
        store.publish(manifest, files)
    assert not store.root.exists() or not any(store.root.iterdir())
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("task_id", ["a", "A9", "x" * 100, "task.v2_final-3"])
def test_safe_task_ids_pass_unchanged(task_id: str) -> None:
    assert safe_task_id(task_id) == task_id


def test_open_store() -> None:
    assert open_store("some/dir").root == Path("some/dir")
    assert open_store("file:///tmp/store").root == Path("/tmp/store")
    with pytest.raises(BundleError, match="unsupported store 'ftp://host/dir'"):
        open_store("ftp://host/dir")


def test_empty_store_has_no_bundles(store: LocalStore) -> None:
    assert store.latest() == []
    assert store.versions("anything") == []


# --- verification ------------------------------------------------------------------------


@pytest.fixture
def published(store: LocalStore, bundle: Bundle) -> Path:
    manifest, files = bundle
    store.publish(manifest, files)
    return store.bundle_path(manifest["task_id"], 1)


def test_tampering_with_any_file_names_it(published: Path) -> None:
    manifest = verify_bundle(published)
    assert len(manifest["files"]) == 6
    for path in manifest["files"]:
        original = (published / path).read_bytes()
        (published / path).write_bytes(original.replace(b"0", b"1", 1) + b" ")
        with pytest.raises(BundleError, match="sha256 mismatch") as info:
            verify_bundle(published)
        assert str(info.value).startswith(f"{path}:")
        (published / path).write_bytes(original)
    verify_bundle(published)


def test_missing_file_is_named(published: Path) -> None:
    (published / PRIVATE / "answer.csv").unlink()
    with pytest.raises(BundleError, match=f"{PRIVATE}/answer.csv: missing"):
        verify_bundle(published)


def test_a_file_the_manifest_does_not_list_is_refused(published: Path) -> None:
    (published / PUBLIC / "answer.csv").write_bytes(
        (published / PRIVATE / "answer.csv").read_bytes()
    )
    with pytest.raises(BundleError, match=r"not in the manifest.*prepared/public/answer\.csv"):
        verify_bundle(published)


def test_missing_manifest(published: Path) -> None:
    (published / MANIFEST).unlink()
    with pytest.raises(BundleError, match="not a bundle") as info:
        verify_bundle(published)
    assert str(published) in str(info.value)


def test_manifest_that_is_not_json(published: Path) -> None:
    (published / MANIFEST).write_text("{not json")
    with pytest.raises(BundleError, match="not valid JSON"):
        verify_bundle(published)


def _edit_manifest(bundle: Path, **changes: Any) -> None:
    manifest = read_manifest(bundle)
    (bundle / MANIFEST).write_text(json.dumps({**manifest, **changes}))


def test_edited_manifest_is_detected(published: Path) -> None:
    _edit_manifest(published, thresholds={"median": 0, "bronze": 0, "silver": 0, "gold": 0})
    with pytest.raises(BundleError, match=r"manifest\.json was modified"):
        verify_bundle(published)


def test_edited_file_hash_in_manifest_is_detected(published: Path) -> None:
    manifest = read_manifest(published)
    files = manifest["files"]
    files[f"{PUBLIC}/train.csv"]["sha256"] = "0" * 64
    _edit_manifest(published, files=files)
    with pytest.raises(BundleError, match=r"manifest\.json was modified"):
        verify_bundle(published)


def test_unknown_format_is_refused(published: Path) -> None:
    _edit_manifest(published, format="other-bundle/9")
    with pytest.raises(BundleError, match="unknown bundle format 'other-bundle/9'"):
        verify_bundle(published)


# --- export: every task's newest version, pulled in the SandMLE layout --------------------


def export_sandmle(store: LocalStore, out: Path, sample_seed: int = 0) -> list[str]:
    shape = get_layout("sandmle", sample_seed=sample_seed)
    return pull(store, select(store), out, layout=shape).task_ids


def _publish_several(store: LocalStore, seeds: tuple[int, ...]) -> list[str]:
    ids = []
    for seed in seeds:
        manifest, files = make_bundle(rng_seed=seed)
        store.publish(manifest, files)
        ids.append(manifest["task_id"])
    return ids


def test_export_sandmle_layout_and_ok_lists(store: LocalStore, tmp_path: Path, epoch: str) -> None:
    ids = _publish_several(store, (1, 2, 3))
    assert len(set(ids)) == 3
    out = tmp_path / "export"
    exported = export_sandmle(store, out)
    assert exported == sorted(ids)
    ok = json.loads((out / "ok_competitions_sanity.json").read_text())
    assert ok == sorted(ids)
    sample = json.loads((out / f"ok_competitions_sanity_random_{SANDMLE_SAMPLE}.json").read_text())
    assert sample == sorted(ids)  # fewer tasks than the sample size: all of them
    for task_id in ids:
        bundle = store.latest()[sorted(ids).index(task_id)]
        public = out / task_id / PUBLIC
        assert sorted(p.name for p in public.iterdir()) == sorted(PUBLIC_FILES)
        for name in PUBLIC_FILES:
            assert (public / name).read_bytes() == (bundle / PUBLIC / name).read_bytes()
        answer = out / task_id / PRIVATE / "answer.csv"
        assert answer.read_bytes() == (bundle / PRIVATE / "answer.csv").read_bytes()
    assert not [p for p in out.rglob("answer.csv") if PUBLIC in p.as_posix()]
    assert not list(out.rglob(MANIFEST))  # the hidden rule stays in the store


def test_export_takes_the_latest_version_and_replaces_stale_files(
    store: LocalStore, tmp_path: Path, epoch: str
) -> None:
    manifest, files = make_bundle()
    task_id = manifest["task_id"]
    store.publish(manifest, files)
    out = tmp_path / "export"
    export_sandmle(store, out)
    stale = out / task_id / PUBLIC / "leftover.txt"
    stale.write_text("from an older export")
    path = f"{PUBLIC}/description.md"
    changed = {**files, path: b"# Revised\n"}
    store.publish(build_manifest(changed, task_id=task_id), changed)
    assert export_sandmle(store, out) == [task_id]
    assert (out / task_id / path).read_bytes() == b"# Revised\n"
    assert not stale.exists()


def test_export_refuses_a_tampered_bundle(store: LocalStore, tmp_path: Path, epoch: str) -> None:
    (task_id,) = _publish_several(store, (4,))
    answer = store.bundle_path(task_id, 1) / PRIVATE / "answer.csv"
    answer.write_bytes(answer.read_bytes() + b"X1,1\n")
    with pytest.raises(BundleError, match=r"answer\.csv"):
        export_sandmle(store, tmp_path / "export")


def test_export_random_sample_is_a_deterministic_subset(store: LocalStore, tmp_path: Path) -> None:
    files = {
        f"{PUBLIC}/train.csv": b"id,y\n1,0\n",
        f"{PRIVATE}/answer.csv": b"id,y\n2,1\n",
    }
    for i in range(SANDMLE_SAMPLE + 6):
        store.publish(build_manifest(files, task_id=f"task-{i:03d}"), files)
    names = f"ok_competitions_sanity_random_{SANDMLE_SAMPLE}.json"
    samples = []
    for seed in (0, 0, 1):
        out = tmp_path / f"export-{len(samples)}"
        ids = export_sandmle(store, out, sample_seed=seed)
        assert len(ids) == SANDMLE_SAMPLE + 6
        samples.append(json.loads((out / names).read_text()))
    for sample in samples:
        assert len(sample) == SANDMLE_SAMPLE == len(set(sample))
        assert sample == sorted(sample)
        assert set(sample) <= set(ids)
    assert samples[0] == samples[1]
    assert samples[0] != samples[2]


def test_export_of_an_empty_store(store: LocalStore, tmp_path: Path) -> None:
    out = tmp_path / "export"
    assert export_sandmle(store, out) == []
    assert json.loads((out / "ok_competitions_sanity.json").read_text()) == []
    assert sorted(os.listdir(out)) == sorted(
        ["ok_competitions_sanity.json", f"ok_competitions_sanity_random_{SANDMLE_SAMPLE}.json"]
    )
