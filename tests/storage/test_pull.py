"""Pulling bundles from a real SeaweedFS server: parallel, verified, resumable, and safe
against tampering and a server that dies mid-publish."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from bundle_factory import make_task
from sandforge.storage import s3_server
from sandforge.storage.backends import open_store
from sandforge.storage.bundle import MANIFEST, verify_bundle
from sandforge.storage.catalog import publish_and_catalog, query
from sandforge.storage.layouts.base import STAGING_PREFIX, staging_folder
from sandforge.storage.local import LocalStore
from sandforge.storage.pulling import BundleRef, PullError, SelectionError, pull, select
from sandforge.storage.s3 import S3Store
from sandforge.storage.s3_server import free_port
from sandforge.storage.store import StoreError

ANSWER = "prepared/private/answer.csv"


@pytest.fixture
def s3(s3_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> S3Store:
    monkeypatch.setenv("SANDFORGE_CACHE", str(tmp_path / "cache"))
    store = open_store(s3_url)
    assert isinstance(store, S3Store)
    for task_id in ("alpha", "beta", "gamma"):
        publish_and_catalog(store, *make_task(task_id, binary=task_id == "gamma"))
    publish_and_catalog(store, *make_task("alpha", salt=1))
    return store


def _gets(store: S3Store) -> list[str]:
    """Keys fetched from now on."""
    fetched: list[str] = []
    store.client.meta.events.register(
        "before-send.s3.GetObject", lambda request, **_: fetched.append(request.url)
    )
    return fetched


class Recorder:
    def __init__(self) -> None:
        self.total: tuple[int, int] | None = None
        self.done = 0

    def start(self, files: int, total_bytes: int) -> None:
        self.total = (files, total_bytes)

    def advance(self, nbytes: int) -> None:
        self.done += nbytes


def test_pull_downloads_verifies_and_skips_what_is_verified(s3: S3Store, tmp_path: Path) -> None:
    out = tmp_path / "pulled"
    progress = Recorder()
    result = pull(s3, select(s3), out, progress=progress)
    assert [str(ref) for ref in result.pulled] == ["alpha@2", "beta@1", "gamma@1"]
    assert (result.skipped, result.failed, result.files) == ([], {}, 18)
    assert progress.total == (18, result.bytes) and progress.done == result.bytes
    for ref in result.pulled:
        local = verify_bundle(out / ref.task_id / str(ref.version))
        assert local == s3.read_manifest(ref.task_id, ref.version)
    assert LocalStore(out).latest_versions() == [("alpha", 2), ("beta", 1), ("gamma", 1)]
    assert not list(out.glob(f"{STAGING_PREFIX}*"))

    fetched = _gets(s3)
    again = pull(s3, select(s3), out)
    assert (again.pulled, len(again.skipped), again.files) == ([], 3, 0)
    assert all(url.endswith(MANIFEST) for url in fetched)  # only the manifests

    (out / "beta" / "1" / ANSWER).write_text("id,y\n")  # damaged locally: pulled again
    fetched.clear()
    third = pull(s3, select(s3), out)
    assert [str(ref) for ref in third.pulled] == ["beta@1"] and len(third.skipped) == 2
    verify_bundle(out / "beta" / "1")


def test_select_by_id_version_and_catalog(s3: S3Store) -> None:
    assert select(s3, ["alpha"]) == [BundleRef("alpha", 2)]
    assert select(s3, ["alpha@1", "beta", "alpha@1"]) == [
        BundleRef("alpha", 1),
        BundleRef("beta", 1),
    ]
    assert select(s3, where="metric = 'rmse'") == [BundleRef("alpha", 2), BundleRef("beta", 1)]
    assert select(s3, where="version = 1 AND task_id = 'alpha'") == [BundleRef("alpha", 1)]
    assert select(s3, where="metric = 'none'") == []
    for ids, message in (
        (["nope"], "no bundle 'nope'"),
        (["alpha@9"], r"'alpha' has no version 9 .*\(has \[1, 2\]\)"),
        (["alpha@x"], "bad bundle id 'alpha@x'"),
        (["../etc"], "bad bundle id"),
    ):
        with pytest.raises(SelectionError, match=message):
            select(s3, ids)
    with pytest.raises(SelectionError, match="not both"):
        select(s3, ["alpha"], "metric = 'rmse'")


def test_a_bundle_tampered_in_the_bucket_is_caught_on_pull(s3: S3Store, tmp_path: Path) -> None:
    base = f"{s3.prefix}/beta/1"
    s3.client.put_object(Bucket=s3.bucket, Key=f"{base}/{ANSWER}", Body=b"id,y\nT000,0\n")
    s3.client.delete_object(Bucket=s3.bucket, Key=f"{s3.prefix}/gamma/1/prepared/public/test.csv")
    out = tmp_path / "pulled"
    with pytest.raises(PullError) as info:
        pull(s3, select(s3), out, layout="sandmle")
    message = str(info.value)
    assert "2 bundle(s) failed" in message
    assert f"beta@1: {s3.url}/beta/1: {ANSWER}: sha256 mismatch" in message
    assert "gamma@1: " in message and "prepared/public/test.csv: missing" in message
    result = info.value.result
    assert [str(ref) for ref in result.pulled] == ["alpha@2"] and result.task_ids == ["alpha"]
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith("ok_")) == ["alpha"]
    assert (out / "ok_competitions_sanity.json").read_text().split() == ["[", '"alpha"', "]"]

    manifest = f"{s3.prefix}/alpha/2/{MANIFEST}"
    forged = s3.client.get_object(Bucket=s3.bucket, Key=manifest)["Body"].read()
    forged = forged.replace(b'"gold": 0.5', b'"gold": 0.0')
    s3.client.put_object(Bucket=s3.bucket, Key=manifest, Body=forged)
    with pytest.raises(PullError, match=r"alpha@2: .*manifest\.json was modified"):
        pull(s3, [BundleRef("alpha", 2)], tmp_path / "again")
    assert not (tmp_path / "again" / "alpha").exists()


def test_server_killed_mid_publish_then_publish_completes(
    s3_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A disposable server, killed after two of the six files; restarted on the same data."""
    data_dir, port = tmp_path / "s3", free_port()
    status = s3_server.up(data_dir, port=port)
    try:
        for var, value in status.env().items():
            monkeypatch.setenv(var, value)
        monkeypatch.setenv("SANDFORGE_CACHE", str(tmp_path / "cache"))
        store = S3Store("crash-test", "bundles")
        store.create_bucket()
        manifest, files = make_task("alpha")
        sent: list[Any] = []

        def kill_before_the_third_file(request: Any, **_: Any) -> None:
            sent.append(request)
            if len(sent) == 4:  # the claim, two files, then this one
                s3_server.down(data_dir)

        store.client.meta.events.register("before-send.s3.PutObject", kill_before_the_third_file)
        with pytest.raises(StoreError, match="cannot reach"):
            publish_and_catalog(store, manifest, files)
        store.client.meta.events.unregister("before-send.s3.PutObject", kill_before_the_third_file)

        assert s3_server.up(data_dir, port=port).running
        assert store.latest_versions() == [] and query(store) == []  # nothing visible
        assert pull(store, select(store), tmp_path / "early").pulled == []

        assert publish_and_catalog(store, manifest, files) == (1, True)  # resumes version 1
        assert [(r["task_id"], r["version"]) for r in query(store)] == [("alpha", 1)]
        result = pull(store, select(store, where="task_id = 'alpha'"), tmp_path / "pulled")
        assert [str(ref) for ref in result.pulled] == ["alpha@1"]
        verify_bundle(tmp_path / "pulled" / "alpha" / "1")
    finally:
        s3_server.down(data_dir)


def test_a_pull_removes_what_a_killed_pull_left_and_nothing_else(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    publish_and_catalog(store, *make_task("alpha"))
    out = tmp_path / "pulled"
    (out / "competitions").mkdir(parents=True)
    # A pull process SIGKILLed while installing: its staging folders stay behind.
    killed = (
        "import os, signal, sys; from pathlib import Path;"
        "from storage.layouts.base import staging_folder;"
        "[print(staging_folder(Path(p)), flush=True) for p in sys.argv[1:]];"
        "os.kill(os.getpid(), signal.SIGKILL)"
    )
    left = subprocess.run(
        [sys.executable, "-c", killed, str(out), str(out / "competitions")],
        capture_output=True,
        text=True,
    )
    assert left.returncode == -signal.SIGKILL
    abandoned = [Path(line) for line in left.stdout.split()]
    assert len(abandoned) == 2 and all(p.is_dir() for p in abandoned)
    running = staging_folder(out)  # a pull still at work in this process

    result = pull(store, select(store), out)
    assert [str(ref) for ref in result.pulled] == ["alpha@1"]
    assert not any(p.exists() for p in abandoned)
    assert running.is_dir()
