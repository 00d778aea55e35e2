"""S3Store against a real SeaweedFS server, and the Store contract both stores share."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from patience import patience
from sandforge.storage import s3_server
from sandforge.storage.backends import open_store
from sandforge.storage.bundle import BundleError, build_manifest, verify_bundle, verify_files
from sandforge.storage.local import LocalStore
from sandforge.storage.s3 import S3Store
from sandforge.storage.s3_server import free_port
from sandforge.storage.signing import default_signer
from sandforge.storage.store import Store, StoreError

TASK = "toy-task"


def make_bundle(task_id: str = TASK, salt: str = "a") -> tuple[dict[str, Any], dict[str, bytes]]:
    files = {
        "prepared/public/description.md": f"# Toy task {salt}\n".encode(),
        "prepared/public/evaluator.py": b"print('{}')\n",
        "prepared/public/train.csv": b"id,x,y\n0,1,2\n1,3,4\n",
        "prepared/public/test.csv": b"id,x\n2,5\n",
        "prepared/public/sample_submission.csv": b"id,y\n2,0\n",
        "prepared/private/answer.csv": f"id,y\n2,{salt}\n".encode(),
    }
    manifest = build_manifest(files, task_id=task_id, thresholds={"gold": 0.9, "median": 0.5})
    return manifest, files


def keys(store: S3Store) -> list[str]:
    listed = store.client.list_objects_v2(Bucket=store.bucket, Prefix=store.prefix + "/")
    return sorted(item["Key"][len(store.prefix) + 1 :] for item in listed.get("Contents", []))


def intact(store: Store, task_id: str, version: int) -> dict[str, Any]:
    """The stored manifest, after checking it and every file it lists against their hashes."""
    manifest = store.read_manifest(task_id, version)
    assert (manifest["task_id"], manifest["version"]) == (task_id, version)
    verify_files(manifest, lambda path: store.read_file(task_id, version, path))
    return manifest


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "local":
        return open_store(tmp_path / "bundles")
    return open_store(request.getfixturevalue("s3_url"))


@pytest.fixture
def s3(s3_url: str) -> S3Store:
    store = open_store(s3_url)
    assert isinstance(store, S3Store)
    return store


# -- the Store contract, for both stores ---------------------------------------------------


def test_open_store_dispatches_on_the_url(tmp_path: Path) -> None:
    assert isinstance(open_store(tmp_path), LocalStore)
    assert open_store(f"file://{tmp_path}").root == tmp_path
    s3 = open_store("s3://some-bucket/a/b/")
    assert isinstance(s3, S3Store) and isinstance(s3, Store)
    assert (s3.bucket, s3.prefix, s3.url) == ("some-bucket", "a/b", "s3://some-bucket/a/b")
    assert open_store("s3://some-bucket").url == "s3://some-bucket"
    for bad in ("ftp://host/x", "s3://", "s3://Bad_Bucket/x", "s3://bucket/../x"):
        with pytest.raises(BundleError, match=r"'" + bad.replace(".", r"\.") + "'"):
            open_store(bad)


def test_publish_is_versioned_and_idempotent(store: Store) -> None:
    manifest, files = make_bundle()
    assert store.publish(manifest, files) == (1, True)
    assert store.publish(manifest, files) == (1, False)
    other, other_files = make_bundle(salt="b")
    assert store.publish(other, other_files) == (2, True)
    second, second_files = make_bundle("another-task")
    assert store.publish(second, second_files) == (1, True)

    assert store.versions(TASK) == [1, 2]
    assert store.versions("unknown-task") == []
    assert store.latest_versions() == [("another-task", 1), (TASK, 2)]
    stored = store.read_manifest(TASK, 2)
    assert stored == default_signer().sign({**other, "version": 2})  # signed on publish
    assert intact(store, TASK, 2) == stored
    path = "prepared/private/answer.csv"
    assert store.read_file(TASK, 1, path) == files[path]
    assert store.read_file(TASK, 2, path) == other_files[path]
    with pytest.raises(FileNotFoundError):
        store.read_file(TASK, 1, "prepared/public/nothing.csv")
    with pytest.raises(BundleError, match=r"no manifest\.json"):
        store.read_manifest(TASK, 3)
    for unsafe in ("../1/manifest.json", "/etc/passwd", "prepared/../../x"):
        with pytest.raises(BundleError, match="unsafe"):
            store.read_file(TASK, 1, unsafe)
    assert str(store) == store.url


# -- S3 specifics ----------------------------------------------------------------------------


def test_s3_bundle_equals_the_local_one(s3: S3Store, tmp_path: Path) -> None:
    manifest, files = make_bundle()
    local = LocalStore(tmp_path)
    assert local.publish(manifest, files) == s3.publish(manifest, files) == (1, True)
    local_manifest = verify_bundle(local.bundle_path(TASK, 1))
    assert intact(s3, TASK, 1) == local_manifest
    for path, entry in local_manifest["files"].items():
        data = s3.read_file(TASK, 1, path)
        assert data == (local.bundle_path(TASK, 1) / path).read_bytes()
        assert len(data) == entry["bytes"]
    # same layout: <task>/<version>/<bundle path>, plus the claim marker and the alias
    local_files = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert keys(s3) == sorted([*local_files, f"{TASK}/1/.claim", f"{TASK}/latest"])


def test_latest_alias_follows_the_newest_version(s3: S3Store) -> None:
    def alias() -> int:
        return json.loads(_alias_body(s3))["version"]

    s3.publish(*make_bundle())
    assert alias() == 1
    s3.publish(*make_bundle(salt="b"))
    assert alias() == 2
    s3.publish(*make_bundle())  # no-op on version 1: the alias stays on 2
    assert alias() == 2


def _alias_body(s3: S3Store) -> bytes:
    key = f"{s3.prefix}/{TASK}/latest"
    return s3.client.get_object(Bucket=s3.bucket, Key=key)["Body"].read()


def test_published_versions_are_immutable(s3: S3Store) -> None:
    manifest, files = make_bundle()
    s3.publish(manifest, files)
    key = f"{s3.prefix}/{TASK}/1/manifest.json"
    assert s3._put(key, b"{}", create_only=True) is False  # If-None-Match: * refused
    other, _ = make_bundle(salt="b")
    with pytest.raises(StoreError, match="different content"):
        s3._commit(TASK, 1, other)
    assert intact(s3, TASK, 1)["content_hash"] == manifest["content_hash"]


def test_publish_refuses_files_that_disagree_with_the_manifest(s3: S3Store) -> None:
    manifest, files = make_bundle()
    with pytest.raises(BundleError, match="sha256 differs"):
        s3.publish(manifest, {**files, "prepared/public/test.csv": b"changed"})
    with pytest.raises(BundleError, match="missing"):
        s3.publish(manifest, {k: v for k, v in files.items() if "answer" not in k})
    with pytest.raises(BundleError, match="content_hash"):
        s3.publish({**manifest, "thresholds": {}}, files)
    assert keys(s3) == []


def test_interrupted_publish_is_invisible_and_resumed(s3: S3Store) -> None:
    manifest, files = make_bundle()
    version, complete = s3._claim(TASK, manifest["content_hash"])
    assert (version, complete) == (1, False)
    s3._upload(TASK, version, dict(list(files.items())[:3]))  # then the publisher died
    assert s3.versions(TASK) == []
    assert s3.latest_versions() == []
    with pytest.raises(BundleError, match=r"no manifest\.json"):
        s3.read_manifest(TASK, 1)

    other, other_files = make_bundle(salt="b")  # different content takes the next number
    assert s3.publish(other, other_files) == (2, True)
    assert s3.publish(manifest, files) == (1, True)  # same content resumes version 1
    assert s3.versions(TASK) == [1, 2]
    assert s3.publish(manifest, files) == (1, False)
    assert intact(s3, TASK, 1)["content_hash"] == manifest["content_hash"]
    assert s3.latest_versions() == [(TASK, 2)]
    assert json.loads(_alias_body(s3)) == {"version": 2}


def test_server_dying_mid_publish_then_retry(
    s3_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second, disposable server: killed after two of the six files were written."""
    data_dir, port = tmp_path / "s3", free_port()
    status = s3_server.up(data_dir, port=port, timeout=patience(s3_server.START_TIMEOUT))
    try:
        for var, value in status.env().items():
            monkeypatch.setenv(var, value)
        store = S3Store("crash-test", "bundles")
        store.create_bucket()
        manifest, files = make_bundle()
        sent: list[str] = []

        def kill_server_before_third_file(request: Any, **_: Any) -> None:
            sent.append(request.url)
            if len(sent) == 4:  # claim, file 1, file 2, then this one
                s3_server.down(data_dir)

        events = store.client.meta.events
        events.register("before-send.s3.PutObject", kill_server_before_third_file)
        started = time.monotonic()
        with pytest.raises(StoreError, match=f"cannot reach.*127.0.0.1:{port}"):
            store.publish(manifest, files)
        assert time.monotonic() - started < patience(15)  # bounded retries, no hang
        store.client.meta.events.unregister(
            "before-send.s3.PutObject", kill_server_before_third_file
        )

        again = s3_server.up(data_dir, port=port, timeout=patience(s3_server.START_TIMEOUT))
        assert again.running  # same data dir, same port
        assert keys(store) == sorted([f"{TASK}/1/.claim", *[f"{TASK}/1/{p}" for p in files][:2]])
        assert store.latest_versions() == []
        assert store.versions(TASK) == []
        assert store.publish(manifest, files) == (1, True)
        assert store.versions(TASK) == [1]
        assert intact(store, TASK, 1)["version"] == 1
    finally:
        s3_server.down(data_dir)


def test_concurrent_publishers_get_distinct_versions(s3_url: str) -> None:
    bundles = [make_bundle(salt=str(i)) for i in range(4)] * 2  # each content twice
    results: list[tuple[int, bool]] = []
    errors: list[BaseException] = []

    def publish(bundle: tuple[dict[str, Any], dict[str, bytes]]) -> None:
        try:
            results.append(open_store(s3_url).publish(*bundle))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=publish, args=(b,)) for b in bundles]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    store = open_store(s3_url)
    assert store.versions(TASK) == [1, 2, 3, 4]
    assert sorted(v for v, created in results if created) == [1, 2, 3, 4]
    hashes = {intact(store, TASK, v)["content_hash"] for v in (1, 2, 3, 4)}
    assert hashes == {m["content_hash"] for m, _ in bundles}


def test_wrong_credentials_are_a_clear_error(s3_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    with pytest.raises(StoreError, match="credentials were rejected") as info:
        open_store(s3_url).latest_versions()
    assert "127.0.0.1" in str(info.value) and s3_url.split("/")[2] in str(info.value)
    assert "not-the-secret" not in str(info.value)

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "NOSUCHKEY")
    with pytest.raises(StoreError, match=r"credentials were rejected \(InvalidAccessKeyId\)"):
        open_store(s3_url).publish(*make_bundle())


def test_missing_bucket_is_a_clear_error(s3_env: dict[str, str]) -> None:
    store = open_store("s3://no-such-bucket/x")
    with pytest.raises(StoreError, match=r"bucket 'no-such-bucket'.*does not exist"):
        store.latest_versions()
    with pytest.raises(StoreError, match="does not exist"):
        store.publish(*make_bundle())
    with pytest.raises(StoreError, match="does not exist"):
        store.read_manifest(TASK, 1)
    buckets = store.client.list_buckets()["Buckets"]
    assert "no-such-bucket" not in {b["Name"] for b in buckets}  # publishing did not create it


def test_unreachable_endpoint_fails_fast(
    s3_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()  # nothing listens: connection refused
    monkeypatch.setenv("SANDFORGE_S3_ENDPOINT", f"http://127.0.0.1:{port}")
    started = time.monotonic()
    with pytest.raises(StoreError, match=f"endpoint http://127.0.0.1:{port}.*cannot reach"):
        open_store("s3://bundles/x").latest_versions()
    assert time.monotonic() - started < patience(5)


@pytest.fixture
def blackhole() -> Iterator[int]:
    """A port whose accept queue is full: connecting hangs like a dropped SYN."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(0)
        with socket.create_connection(server.getsockname()):  # fills the queue
            yield server.getsockname()[1]


def test_unresponsive_endpoint_times_out_quickly(
    s3_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, blackhole: int
) -> None:
    monkeypatch.setenv("SANDFORGE_S3_ENDPOINT", f"http://127.0.0.1:{blackhole}")
    started = time.monotonic()
    with pytest.raises(StoreError, match=r"cannot reach.*timeout"):
        open_store("s3://bundles/x").versions(TASK)
    assert time.monotonic() - started < patience(10)


# -- the development server ---------------------------------------------------------------------


def test_dev_server_status_up_again_and_taken_port(
    s3_server_status: s3_server.ServerStatus, tmp_path: Path
) -> None:
    status = s3_server.status(s3_server_status.data_dir)
    assert status.running and status.pid == s3_server_status.pid
    again = s3_server.up(status.data_dir, port=status.port or 0)
    assert again.pid == status.pid  # already running: nothing started
    lines = str(status).splitlines()
    assert f"export SANDFORGE_S3_ENDPOINT=http://127.0.0.1:{status.port}" in lines
    assert f"export AWS_ACCESS_KEY_ID={status.access_key}" in lines
    assert f"export AWS_SECRET_ACCESS_KEY={status.secret_key}" in lines
    assert status.secret_key not in repr(status)
    assert (status.data_dir / "s3.json").stat().st_mode & 0o077 == 0
    assert len(set(status.ports.values()) | {status.port}) == len(status.ports) + 1

    with pytest.raises(s3_server.S3ServerError, match=f"port {status.port} .*in use"):
        s3_server.up(tmp_path / "other", port=status.port or 0)
    assert not s3_server.status(tmp_path / "other").running
    assert s3_server.down(tmp_path / "other") is False
