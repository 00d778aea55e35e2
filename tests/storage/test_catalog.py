"""The catalog: kept by every publish, queried with DuckDB, rebuilt from manifests; for the
local store and against a real SeaweedFS server."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
from bundle_factory import make_task
from sandforge.storage.backends import open_store
from sandforge.storage.catalog import (
    CATALOG,
    PARTS,
    CatalogQueryError,
    add_to_catalog,
    catalog_row,
    compact,
    part_name,
    publish_and_catalog,
    query,
    rebuild,
)
from sandforge.storage.local import LocalStore
from sandforge.storage.s3 import S3Store
from sandforge.storage.store import Store

from sandforge.cli import main


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    monkeypatch.setenv("SANDFORGE_CACHE", str(tmp_path / "cache"))
    if request.param == "local":
        return open_store(tmp_path / "bundles")
    return open_store(request.getfixturevalue("s3_url"))


def test_every_publish_lands_in_the_catalog(store: Store) -> None:
    assert query(store) == []
    for task_id in ("alpha", "beta"):
        publish_and_catalog(store, *make_task(task_id))
    publish_and_catalog(store, *make_task("gamma", binary=True))
    publish_and_catalog(store, *make_task("alpha", salt=1))  # a second version
    assert publish_and_catalog(store, *make_task("beta")) == (1, False)  # no duplicate row

    rows = query(store)
    assert [(r["task_id"], r["version"], r["is_latest"]) for r in rows] == [
        ("alpha", 1, False),
        ("alpha", 2, True),
        ("beta", 1, True),
        ("gamma", 1, True),
    ]
    manifest = store.read_manifest("gamma", 1)
    gamma = rows[-1]
    assert gamma == {**catalog_row(manifest), "is_latest": True}
    assert (gamma["metric"], gamma["direction"], gamma["task_type"]) == (
        "accuracy",
        "higher",
        "binary",
    )
    assert (gamma["gold_threshold"], gamma["median_threshold"]) == (0.9, 0.6)
    assert (gamma["oracle_score"], gamma["n_test"], gamma["n_files"]) == (1.0, 30, 6)
    assert gamma["total_bytes"] == gamma["public_bytes"] + gamma["private_bytes"]
    assert gamma["created_at"].isoformat() == manifest["created_at"]
    assert gamma["difficulty"] == "medium"  # a manifest from before the knob was medium
    unsigned = {k: v for k, v in manifest.items() if k != "signature"}
    assert catalog_row({**unsigned, "difficulty": "hard"})["difficulty"] == "hard"

    rmse = query(store, "metric = 'rmse' AND is_latest")
    assert [(r["task_id"], r["version"]) for r in rmse] == [("alpha", 2), ("beta", 1)]
    assert query(store, "gold_threshold > 0.8 AND direction = 'higher'")[0]["task_id"] == "gamma"


def test_rebuild_reconstructs_the_catalog_from_manifests(store: Store) -> None:
    for task_id in ("alpha", "beta", "gamma"):
        store.publish(*make_task(task_id))  # published behind the catalog's back
    publish_and_catalog(store, *make_task("delta"))
    assert [r["task_id"] for r in query(store)] == ["delta"]

    rebuilt = rebuild(store)
    assert (rebuilt.rows, rebuilt.problems) == (4, [])
    assert [r["task_id"] for r in query(store)] == ["alpha", "beta", "delta", "gamma"]
    assert list(store.list_objects(PARTS)) == []  # folded into catalog.parquet
    assert list(store.list_objects("_catalog")) == [CATALOG]

    publish_and_catalog(store, *make_task("epsilon"))  # catalog + one part: both read
    assert len(query(store)) == 5
    assert compact(store) == 5
    assert list(store.list_objects("_catalog")) == [CATALOG]
    assert "epsilon" in [r["task_id"] for r in query(store)]


def test_rebuild_leaves_out_a_forged_manifest_and_says_so(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    publish_and_catalog(store, *make_task("alpha"))
    publish_and_catalog(store, *make_task("beta"))
    manifest = store.bundle_path("beta", 1) / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"gold": 0.5', '"gold": 0.0'))
    rebuilt = rebuild(store)
    assert rebuilt.rows == 1
    assert (
        len(rebuilt.problems) == 1 and "beta/1: manifest.json was modified" in rebuilt.problems[0]
    )
    assert [r["task_id"] for r in query(store)] == ["alpha"]


def test_concurrent_publishers_lose_no_row(
    s3_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SANDFORGE_CACHE", str(tmp_path))
    tasks = [make_task(f"task-{i}") for i in range(4)]
    store = open_store(s3_url)  # boto3 clients are thread-safe: one for all publishers
    errors: list[BaseException] = []

    def publish(bundle: tuple) -> None:
        try:
            publish_and_catalog(store, *bundle)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=publish, args=(task,)) for task in tasks]
    threads.append(threading.Thread(target=lambda: compact(store)))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert [r["task_id"] for r in query(store)] == [f"task-{i}" for i in range(4)]


def test_catalog_replacement_is_compare_and_swap(store: Store) -> None:
    publish_and_catalog(store, *make_task("alpha"))
    compact(store)
    current = store.get_object(CATALOG)
    assert current is not None
    publish_and_catalog(store, *make_task("beta"))
    compact(store)  # another writer replaced it meanwhile
    assert store.put_object(CATALOG, b"stale", if_match=current[1]) is False
    assert store.put_object(CATALOG, b"stale", create_only=True) is False
    assert [r["task_id"] for r in query(store)] == ["alpha", "beta"]


def test_a_bad_where_clause_is_a_query_error(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    publish_and_catalog(store, *make_task("alpha"))
    with pytest.raises(CatalogQueryError, match="no_such_column"):
        query(store, "no_such_column = 1")
    with pytest.raises(CatalogQueryError, match="file system operations are disabled"):
        query(
            store, f"task_id IN (SELECT content FROM read_text('{tmp_path}/alpha/1/manifest.json'))"
        )
    for smuggled in (
        f"1 = 1); COPY bundles TO '{tmp_path}/leak.csv' --",
        "1 = 1); DROP TABLE bundles; SELECT (1",
    ):
        with pytest.raises(CatalogQueryError, match="give one SQL condition"):
            query(store, smuggled)
    assert [r["task_id"] for r in query(store)] == ["alpha"]  # the loaded catalog is intact
    assert not (tmp_path / "leak.csv").exists()


def test_s3_queries_download_only_what_changed(s3_url: str, tmp_path: Path) -> None:
    store = open_store(s3_url)
    assert isinstance(store, S3Store)
    for task_id in ("alpha", "beta"):
        publish_and_catalog(store, *make_task(task_id))
    fetched: list[str] = []
    store.client.meta.events.register(
        "before-send.s3.GetObject", lambda request, **_: fetched.append(request.url)
    )
    cache = tmp_path / "cache"
    assert len(query(store, cache_dir=cache)) == 2
    assert len(fetched) == 2
    assert len(query(store, cache_dir=cache)) == 2
    assert len(fetched) == 2  # unchanged: listed, not downloaded
    add_to_catalog(store, {**make_task("gamma")[0], "version": 1})
    compact(store)
    fetched.clear()
    assert [r["task_id"] for r in query(store, cache_dir=cache)] == ["alpha", "beta", "gamma"]
    assert [url.rsplit("/", 1)[1] for url in fetched] == ["catalog.parquet"]
    assert sorted(p.name for p in (cache / "_catalog").rglob("*.parquet")) == ["catalog.parquet"]


def test_the_publish_stage_writes_the_catalog_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sandforge.storage.stages import Publish

    manifest, files = make_task("alpha")
    monkeypatch.setattr("sandforge.storage.stages.manifest_for", lambda _candidate: manifest)
    candidate = SimpleNamespace(files=files, bundle_path=None, manifest=None)
    Publish(LocalStore(tmp_path)).run(candidate)  # type: ignore[arg-type]
    assert candidate.manifest["version"] == 1
    assert (tmp_path / part_name("alpha", 1)).is_file()
    assert [r["task_id"] for r in query(LocalStore(tmp_path))] == ["alpha"]


def test_the_crafts_column_lists_carried_crafts_and_filters(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    store = LocalStore(tmp_path / "bundles")

    def craft(name: str, carried: bool) -> dict:
        return {"quirk": "q", "craft": name, "gain": 0.2, "tier_step": 0.1, "carried": carried}

    publish_and_catalog(
        store, *make_task("geo", crafts=[craft("geo_distance", True), craft("time_parts", False)])
    )
    publish_and_catalog(store, *make_task("times", crafts=[craft("time_parts", True)]))
    publish_and_catalog(store, *make_task("plain"))
    rows = {r["task_id"]: r["crafts"] for r in query(store)}
    assert rows == {"geo": ["geo_distance"], "times": ["time_parts"], "plain": []}
    picked = query(store, "list_contains(crafts, 'geo_distance')")
    assert [r["task_id"] for r in picked] == ["geo"]
    assert [r["task_id"] for r in query(store, "list_contains(crafts, 'time_parts')")] == ["times"]
    where = "list_contains(crafts, 'geo_distance')"
    assert main(["catalog", "--store", str(tmp_path / "bundles"), "--where", where, "--json"]) == 0
    assert [r["task_id"] for r in json.loads(capsys.readouterr().out)] == ["geo"]
