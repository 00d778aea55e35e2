"""Attacks on stored bundles and on the development S3 server, each asserted contained.

The attacker can write to the bucket (or the local store's folder) but does not hold the
publisher's private key. Consumers are `sandforge pull|export|inspect|grade` and the Python
API (`open_store`, `select`, `pull`). S3 cases run against the real SeaweedFS
server of tests/conftest.py, started hardened by storage/s3_server.py.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import re
import socket
import ssl
import stat
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from bundle_factory import make_task
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sandforge.storage import PullError, SignatureError, Trust, open_store, pull, s3_server, select
from sandforge.storage.bundle import MANIFEST, canonical_json, content_hash, sha256
from sandforge.storage.catalog import publish_and_catalog, query, rebuild
from sandforge.storage.local import LocalStore
from sandforge.storage.pulling import BundleRef
from sandforge.storage.s3 import S3Store
from sandforge.storage.s3_security import SECURITY_FILE, client_context, tls_files
from sandforge.storage.signing import (
    KEY_ENV,
    KEY_FILE_ENV,
    TRUSTED_ENV,
    Signer,
    SigningKeyError,
    default_signer,
)
from sandforge.storage.store import Store

from sandforge.bundle_files import PRIVATE, PUBLIC
from sandforge.cli import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, main

TASK, OTHER = "alpha", "beta"
EVIL = b"import os\nos.system('echo pwned > /tmp/pwned')  # planted by the attacker\n"
ANSWER = f"{PRIVATE}/answer.csv"
EVALUATOR = f"{PUBLIC}/evaluator.py"
Bundle = tuple[dict[str, Any], dict[str, bytes]]


# -- the attacker's tools ------------------------------------------------------------------------


def attacker_key() -> Signer:
    return Signer(Ed25519PrivateKey.generate(), "attacker")


def write_raw(store: Store, task_id: str, version: int, files: dict[str, bytes]) -> None:
    """Write objects straight into the store, as anyone with bucket write access can."""
    for path, data in files.items():
        if isinstance(store, S3Store):
            key = f"{store.prefix}/{task_id}/{version}/{path}"
            store.client.put_object(Bucket=store.bucket, Key=key, Body=data)
        else:
            assert isinstance(store, LocalStore)
            target = store.bundle_path(task_id, version) / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)


def stored(store: Store, task_id: str, version: int = 1) -> Bundle:
    manifest = store.read_manifest(task_id, version)
    return manifest, {p: store.read_file(task_id, version, p) for p in manifest["files"]}


def rehash(manifest: dict[str, Any], files: dict[str, bytes]) -> dict[str, Any]:
    """What a forger does: new file hashes, then a new content hash over them."""
    manifest = {
        **manifest,
        "files": {p: {"sha256": sha256(b), "bytes": len(b)} for p, b in files.items()},
    }
    return {**manifest, "content_hash": content_hash(manifest)}


def forged_files(files: dict[str, bytes]) -> dict[str, bytes]:
    """Answers every agent gets right (a constant) and an evaluator that runs our code."""
    rows = files[ANSWER].decode().splitlines()
    answers = "\n".join([rows[0], *(f"{row.split(',')[0]},0" for row in rows[1:])]) + "\n"
    return {**files, ANSWER: answers.encode(), EVALUATOR: EVIL}


def unsigned(manifest: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in manifest.items() if k != "signature"}


Attack = Callable[[Bundle, Bundle, Signer], Bundle]  # (target, another bundle, publisher)


def keep_signature(target: Bundle, _other: Bundle, _publisher: Signer) -> Bundle:
    manifest, files = target
    files = forged_files(files)
    return {**rehash(manifest, files), "signature": manifest["signature"]}, files


def strip_signature(target: Bundle, _other: Bundle, _publisher: Signer) -> Bundle:
    manifest, files = target
    files = forged_files(files)
    return unsigned(rehash(manifest, files)), files


def resign_with_own_key(target: Bundle, _other: Bundle, _publisher: Signer) -> Bundle:
    manifest, files = target
    files = forged_files(files)
    return attacker_key().sign(rehash(manifest, files)), files


def spoof_key_id(target: Bundle, _other: Bundle, publisher: Signer) -> Bundle:
    """Own signature, labelled with the publisher's key id."""
    manifest, files = target
    files = forged_files(files)
    signed = attacker_key().sign(rehash(manifest, files))
    signed["signature"]["key_id"] = publisher.key_id
    return signed, files


def spoof_key_id_and_public_key(target: Bundle, _other: Bundle, publisher: Signer) -> Bundle:
    """Own signature value inside the publisher's complete signature block."""
    manifest, files = target
    files = forged_files(files)
    signed = attacker_key().sign(rehash(manifest, files))
    block = {**manifest["signature"], "value": signed["signature"]["value"]}
    return {**signed, "signature": block}, files


def swap_in_other_signature(target: Bundle, other: Bundle, _publisher: Signer) -> Bundle:
    manifest, files = target
    files = forged_files(files)
    return {**rehash(manifest, files), "signature": other[0]["signature"]}, files


def lower_the_gold_threshold(target: Bundle, _other: Bundle, _publisher: Signer) -> Bundle:
    """No file touched: make gold trivially reachable, content hash recomputed."""
    manifest, files = target
    changed = {**manifest, "thresholds": {**manifest["thresholds"], "gold": 1e9}}
    return {**changed, "content_hash": content_hash(changed)}, files


def redate(target: Bundle, _other: Bundle, _publisher: Signer) -> Bundle:
    """created_at is outside the content hash, but not outside the signature."""
    manifest, files = target
    return {**manifest, "created_at": "2001-01-01T00:00:00+00:00"}, files


ATTACKS: dict[str, tuple[Attack, str]] = {
    "forged files, hashes recomputed, signature kept": (keep_signature, "does not match"),
    "forged files, signature stripped": (strip_signature, r"unsigned bundle.*--allow-unsigned"),
    "forged files, re-signed with the attacker's key": (resign_with_own_key, "not trusted"),
    "key id spoofed": (spoof_key_id, "spoofed key id"),
    "key id and public key spoofed": (spoof_key_id_and_public_key, "does not match"),
    "another bundle's signature swapped in": (swap_in_other_signature, "does not match"),
    "manifest field changed after signing": (lower_the_gold_threshold, "does not match"),
    "created_at changed after signing": (redate, "does not match"),
}


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture
def publisher() -> Signer:
    return default_signer()  # the session's local key (tests/conftest.py): trusted by default


def publish_two(store: Store) -> tuple[Bundle, Bundle]:
    for task_id in (TASK, OTHER):
        publish_and_catalog(store, *make_task(task_id))
    return stored(store, TASK), stored(store, OTHER)


def no_evil_under(folder: Path) -> bool:
    return not any(p.is_file() and EVIL in p.read_bytes() for p in folder.rglob("*"))


# -- forged bundles ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ATTACKS)
def test_forged_bundle_is_refused_from_s3(
    name: str,
    s3_url: str,
    publisher: Signer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
) -> None:
    attack, reason = ATTACKS[name]
    store = open_store(s3_url)
    target, other = publish_two(store)
    manifest, files = attack(target, other, publisher)
    write_raw(store, TASK, 1, {**files, MANIFEST: canonical_json(manifest)})

    out = tmp_path / "pulled"
    assert main(["pull", "--store", s3_url, "--id", TASK, "--out", str(out)]) == EXIT_FAILED
    err = capsys.readouterr().err
    assert f"{TASK}@1" in err and "--allow-unsigned" in err
    assert re.search(reason, err.replace("\n", " ")), err
    export = ["export", "--store", s3_url, "--layout", "mlebench", "--out", str(out)]
    assert main(export) == EXIT_FAILED
    assert f"{TASK}@1" in capsys.readouterr().err
    assert (out / "competitions" / OTHER).is_dir()  # the genuine bundle still exports

    with pytest.raises(PullError, match=reason) as failed:  # the Python API
        pull(open_store(s3_url), select(store, ids=[TASK]), tmp_path / "api")
    assert list(failed.value.result.failed) == [f"{TASK}@1"]
    with pytest.raises(SignatureError, match=reason):  # the check pull runs, called directly
        Trust.default().check(store.read_manifest(TASK, 1))
    assert no_evil_under(tmp_path)  # the planted evaluator reached no output folder


@pytest.mark.parametrize("name", ATTACKS)
def test_forged_bundle_is_refused_by_inspect_and_grade(
    name: str, publisher: Signer, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    attack, reason = ATTACKS[name]
    store = open_store(tmp_path / "store")
    target, other = publish_two(store)
    manifest, files = attack(target, other, publisher)
    write_raw(store, TASK, 1, {**files, MANIFEST: canonical_json(manifest)})
    bundle = str(store.bundle_path(TASK, 1))

    assert main(["inspect", bundle]) == EXIT_FAILED
    err = capsys.readouterr().err.replace("\n", " ")
    assert bundle in err and re.search(reason, err), err
    answers = str(store.bundle_path(TASK, 1) / ANSWER)
    assert main(["grade", bundle, answers, "--json"]) == EXIT_FAILED
    assert capsys.readouterr().out == ""  # no report for a bundle nobody vouches for
    assert main(["inspect", str(store.bundle_path(OTHER, 1))]) == EXIT_OK


def test_allow_unsigned_does_not_accept_a_broken_signature(
    s3_url: str, publisher: Signer, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    store = open_store(s3_url)
    target, other = publish_two(store)
    manifest, files = keep_signature(target, other, publisher)
    write_raw(store, TASK, 1, {**files, MANIFEST: canonical_json(manifest)})
    args = ["pull", "--store", s3_url, "--id", TASK, "--out", str(tmp_path), "--allow-unsigned"]
    assert main(args) == EXIT_FAILED
    assert "does not match" in capsys.readouterr().err
    assert no_evil_under(tmp_path)


def test_version_replayed_under_a_newer_number_is_refused(s3_url: str, tmp_path: Path) -> None:
    """Rollback: the genuine, signed version 1 copied to version 2 so it becomes 'latest',
    once as is and once with its version field edited."""
    store = open_store(s3_url)
    publish_and_catalog(store, *make_task(TASK))
    publish_and_catalog(store, *make_task(TASK, salt=1))  # version 2, genuine
    manifest, files = stored(store, TASK, 1)
    write_raw(store, TASK, 3, {**files, MANIFEST: canonical_json(manifest)})
    with pytest.raises(PullError, match="manifest is another's"):
        pull(store, select(store, ids=[f"{TASK}@3"]), tmp_path / "a")
    renumbered = {**manifest, "version": 4}
    write_raw(store, TASK, 4, {**files, MANIFEST: canonical_json(renumbered)})
    with pytest.raises(PullError, match="does not match"):
        pull(store, select(store, ids=[TASK]), tmp_path / "b")  # 4 is now the newest
    assert pull(store, select(store, ids=[f"{TASK}@2"]), tmp_path / "c").pulled


def test_public_key_field_is_never_read_as_a_path(s3_url: str, tmp_path: Path) -> None:
    """A signature naming a FIFO (or /etc/shadow) as its public key must not make the
    consumer open it: that would hang on the FIFO, or read a secret."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    store = open_store(s3_url)
    publish_and_catalog(store, *make_task(TASK))
    manifest = store.read_manifest(TASK, 1)
    manifest["signature"]["public_key"] = str(fifo)
    write_raw(store, TASK, 1, {MANIFEST: canonical_json(manifest)})
    outcome: list[BaseException] = []

    def consume() -> None:
        try:
            pull(store, select(store, ids=[TASK]), tmp_path / "out")
        except PullError as exc:
            outcome.append(exc)

    worker = threading.Thread(target=consume)
    worker.start()
    worker.join(timeout=60)
    assert not worker.is_alive(), "the pull blocked on the FIFO"
    assert "malformed signature" in str(outcome[0])


# -- legacy (unsigned) and correctly signed bundles ----------------------------------------------


def write_legacy(store: Store, task_id: str) -> None:
    """A bundle exactly as sandforge wrote it before signing existed."""
    manifest, files = make_task(task_id)
    write_raw(store, task_id, 1, {**files, MANIFEST: canonical_json({**manifest, "version": 1})})


def test_legacy_unsigned_bundle_needs_allow_unsigned(
    s3_url: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    store = open_store(s3_url)
    write_legacy(store, TASK)
    out = tmp_path / "out"
    assert main(["pull", "--store", s3_url, "--id", TASK, "--out", str(out)]) == EXIT_FAILED
    err = capsys.readouterr().err
    assert f"{TASK}@1" in err and "published before sandforge signed bundles" in err
    assert "pass --allow-unsigned" in err and not out.joinpath(TASK).exists()
    args = ["pull", "--store", s3_url, "--id", TASK, "--out", str(out), "--allow-unsigned"]
    assert main(args) == EXIT_OK
    assert (out / TASK / "1" / ANSWER).is_file()
    export = ["export", "--store", s3_url, "--out", str(tmp_path / "x")]
    assert main(export) == EXIT_FAILED and "--allow-unsigned" in capsys.readouterr().err
    assert main([*export, "--allow-unsigned"]) == EXIT_OK

    with pytest.raises(PullError, match="--allow-unsigned"):
        pull(store, select(store), tmp_path / "api")
    lenient = Trust.default(allow_unsigned=True)
    assert pull(store, select(store), tmp_path / "api", trust=lenient).pulled == [
        BundleRef(TASK, 1)
    ]

    local = out / TASK / "1"
    assert main(["inspect", str(local)]) == EXIT_FAILED
    assert "--allow-unsigned" in capsys.readouterr().err
    assert main(["inspect", str(local), "--allow-unsigned"]) == EXIT_OK
    assert "UNSIGNED" in capsys.readouterr().out


def test_correctly_signed_bundle_passes_everywhere(
    s3_url: str, publisher: Signer, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    store = open_store(s3_url)
    publish_two(store)
    out = tmp_path / "native"
    assert main(["pull", "--store", s3_url, "--id", TASK, "--out", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["pulled"] == [f"{TASK}@1"]
    export = ["export", "--store", s3_url, "--layout", "sandmle", "--out", str(tmp_path / "s")]
    assert main(export) == EXIT_OK
    capsys.readouterr()
    assert (tmp_path / "s" / OTHER / "prepared" / "public" / "evaluator.py").is_file()
    assert Trust.default().check(store.read_manifest(TASK, 1)) == publisher.key_id
    assert pull(store, select(store), tmp_path / "api", layout="mledojo").pulled

    bundle = out / TASK / "1"  # a pulled native bundle keeps its signature: checkable offline
    assert main(["inspect", str(bundle)]) == EXIT_OK
    assert f"signed by {publisher.key_id}" in capsys.readouterr().out
    perfect = tmp_path / "perfect.csv"  # a copy: the evaluator refuses the answers file itself
    perfect.write_bytes((bundle / ANSWER).read_bytes())
    assert main(["grade", str(bundle), str(perfect), "--json"]) == EXIT_OK
    assert json.loads(capsys.readouterr().out)["gold_medal"] is True


def test_another_publishers_key_is_trusted_only_when_asked(
    s3_url: str, tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    colleague = attacker_key()  # any key that is not this machine's
    store = open_store(s3_url)
    publish_and_catalog(store, *make_task(TASK), signer=colleague)
    pull_args = ["pull", "--store", s3_url, "--id", TASK]
    assert main([*pull_args, "--out", str(tmp_path / "a")]) == EXIT_FAILED
    assert f"signed by key {colleague.key_id}, which is not trusted" in capsys.readouterr().err

    pub = tmp_path / "colleague.pub"
    pub.write_text(colleague.public_text + "\n")
    for trust in (colleague.public_text, str(pub)):
        assert main([*pull_args, "--out", str(tmp_path / "b"), "--trust", trust]) == EXIT_OK
    with pytest.raises(PullError, match="not trusted"):
        pull(store, select(store), tmp_path / "c")
    monkeypatch.setenv(TRUSTED_ENV, f"ed25519:{'A' * 43}=, {colleague.public_text}")
    assert pull(store, select(store), tmp_path / "c").pulled
    monkeypatch.delenv(TRUSTED_ENV)
    trusting = Trust.default([colleague.public_text])
    assert pull(store, select(store), tmp_path / "d", trust=trusting).pulled


def test_catalog_records_the_signer_and_rebuild_checks_it(
    s3_url: str, publisher: Signer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SANDFORGE_CACHE", str(tmp_path / "cache"))
    store = open_store(s3_url)
    target, other = publish_two(store)
    write_legacy(store, "gamma")
    rows = {row["task_id"]: row["signer_key_id"] for row in query(store)}
    assert rows == {TASK: publisher.key_id, OTHER: publisher.key_id}

    manifest, files = keep_signature(target, other, publisher)
    write_raw(store, TASK, 1, {**files, MANIFEST: canonical_json(manifest)})
    rebuilt = rebuild(store)
    assert [p for p in rebuilt.problems if f"/{TASK}/1" in p and "does not match" in p]
    rows = {row["task_id"]: row["signer_key_id"] for row in query(store)}
    assert rows == {OTHER: publisher.key_id, "gamma": None}  # forged one left out
    assert query(store, f"signer_key_id = '{publisher.key_id}'")[0]["task_id"] == OTHER


def test_signing_keeps_bundles_byte_identical(publisher: Signer, tmp_path: Path) -> None:
    first, second = (LocalStore(tmp_path / name) for name in ("one", "two"))
    for store in (first, second):
        store.publish(*make_task(TASK))
    paths = [store.bundle_path(TASK, 1) / MANIFEST for store in (first, second)]
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert json.loads(paths[0].read_bytes())["signature"]["key_id"] == publisher.key_id


# -- the private key -----------------------------------------------------------------------------


def secret_forms(pem: bytes) -> list[bytes]:
    """Every way the private key could leak: PEM lines, raw seed in base64 and hex."""
    key = serialization.load_pem_private_key(pem, password=None)
    raw = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    body = [line for line in pem.splitlines() if line and not line.startswith(b"-----")]
    return [*body, base64.b64encode(raw), raw.hex().encode(), raw]


def test_private_key_file_is_0600_and_never_leaks(
    s3_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = tmp_path / "keys" / "signing.pem"
    env = {**os.environ, KEY_FILE_ENV: str(key)}
    run = [sys.executable, "-m", "sandforge.cli", "-v"]
    init = subprocess.run([*run, "keys", "init"], env=env, capture_output=True, check=True)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(key.parent.stat().st_mode) == 0o700
    assert main(["keys", "init", "--out", str(key)]) == EXIT_BAD_INPUT  # never overwritten
    pem = key.read_bytes()
    outputs = [init.stdout + init.stderr]
    show = subprocess.run([*run, "keys", "show", "--json"], env=env, capture_output=True)
    public = json.loads(show.stdout)["public_key"]
    outputs.append(show.stdout + show.stderr)

    # publish and consume with the key in the environment, everything logged (-v)
    env = {**os.environ, KEY_ENV: pem.decode()}
    env.pop(KEY_FILE_ENV)
    monkeypatch.setenv(KEY_ENV, pem.decode())
    store = open_store(s3_url)
    publish_and_catalog(store, *make_task(TASK))
    for args in (
        ["pull", "--store", s3_url, "--id", TASK, "--out", str(tmp_path / "out"), "--json"],
        ["inspect", str(tmp_path / "out" / TASK / "1"), "--json"],
        ["keys", "show"],
    ):
        done = subprocess.run([*run, *args], env=env, capture_output=True, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout + done.stderr)
    assert public.encode() in outputs[-1]
    damaged = pem.replace(b"M", b"N", 1)  # a damaged key is named, never quoted
    bad = subprocess.run(
        [*run, "keys", "show"], env={**env, KEY_ENV: damaged.decode()}, capture_output=True
    )
    assert bad.returncode == EXIT_BAD_INPUT and KEY_ENV.encode() in bad.stderr
    assert damaged.splitlines()[1] not in bad.stdout + bad.stderr
    outputs.append(bad.stdout + bad.stderr)
    pasted = subprocess.run(  # a private key pasted where a public one belongs
        [*run, "pull", "--store", s3_url, "--id", TASK, "--out", "x", "--trust", str(key)],
        env=env,
        capture_output=True,
        cwd=tmp_path,
    )
    assert pasted.returncode == EXIT_BAD_INPUT and b"holds a private key" in pasted.stderr
    outputs.append(pasted.stdout + pasted.stderr)

    stored_bytes = [
        obj["Body"].read()
        for item in store.client.list_objects_v2(Bucket=store.bucket, Prefix=store.prefix)[
            "Contents"
        ]
        for obj in [store.client.get_object(Bucket=store.bucket, Key=item["Key"])]
    ]
    pulled = [p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file()]
    for form in secret_forms(pem):
        for blob in [*outputs, *stored_bytes, *pulled]:
            assert form not in blob


def test_key_file_readable_by_others_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    key = tmp_path / "signing.pem"
    monkeypatch.setenv(KEY_FILE_ENV, str(key))
    assert main(["keys", "init"]) == EXIT_OK
    key.chmod(0o644)
    capsys.readouterr()
    with pytest.raises(SigningKeyError, match="chmod 600"):
        LocalStore(tmp_path / "store").publish(*make_task(TASK))
    assert main(["keys", "show"]) == EXIT_BAD_INPUT
    assert main(["generate", "--seeds", "spaceship-titanic", "--store", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "permissions 0644" in err and "BEGIN" not in err
    assert not (tmp_path / "store").exists()


def test_first_use_creates_and_announces_a_local_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """The zero-configuration path of `generate` in a fresh folder: one notice, a 0600 key
    that bundles are signed with, trusted on this machine without any --trust."""
    from sandforge.commands.generate import _signing_key_ready

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(KEY_FILE_ENV)
    assert _signing_key_ready()
    notice = capsys.readouterr().err
    key = Path(".sandforge/keys/signing.pem")
    signer = default_signer()
    assert f"created signing key {key} (key id {signer.key_id})" in notice
    assert signer.public_text in notice and stat.S_IMODE(key.stat().st_mode) == 0o600
    assert _signing_key_ready() and capsys.readouterr().err == ""  # only the first time
    store = LocalStore(tmp_path / "store")
    store.publish(*make_task(TASK))  # what the Publish stage does
    assert Trust.default().check(store.read_manifest(TASK, 1)) == signer.key_id


# -- the development S3 server -------------------------------------------------------------------


def listening_ports(pid: int) -> set[int]:
    """TCP ports the process listens on: its socket inodes matched in /proc/<pid>/net/tcp*."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    ports = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def plain_http(port: int, method: str, path: str = "/") -> int | None:
    """Status of an unauthenticated HTTP request, None when the port drops it."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, path, body=b"x" if method == "PUT" else None)
        return connection.getresponse().status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        connection.close()


def tls_reply(port: int, context: ssl.SSLContext) -> bytes | str:
    """First bytes a TLS client gets back after sending an HTTP request, or the error."""
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            tls.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            return tls.recv(64)
    except (OSError, ssl.SSLError) as exc:
        return f"{type(exc).__name__}: {exc}"


def test_every_internal_port_refuses_strangers(
    s3_server_status: s3_server.ServerStatus, s3_url: str
) -> None:
    status = s3_server_status
    ports = listening_ports(status.pid or 0)
    http_ports = {status.ports[f"{c}.port"] for c in ("master", "volume", "filer", "admin")}
    assert {status.port, *status.ports.values()} <= ports  # the table really is weed's
    stranger = ssl.create_default_context(cafile=str(tls_files(status.data_dir).ca))
    owner = client_context(status.data_dir)
    for port in sorted(ports - {status.port}):
        for method in ("GET", "PUT"):
            assert plain_http(port, method) in (None, 400), (port, method)  # 400: TLS only
        refused = tls_reply(port, stranger)
        assert isinstance(refused, str) and "CERTIFICATE_REQUIRED" in refused, (port, refused)
        answered = tls_reply(port, owner)  # control: the same request with the certificate
        assert isinstance(answered, bytes) and answered, (port, answered)
        if port in http_ports:
            assert answered.startswith(b"HTTP/1.1 "), (port, answered)

    assert plain_http(status.port, "GET") == 403  # S3 without SigV4
    assert plain_http(status.port, "PUT", "/sandforge-test/planted") == 403
    store = open_store(s3_url)
    assert store.put_object("_probe/x", b"with the keys")
    assert store.get_object("_probe/x")[0] == b"with the keys"


def test_master_cannot_delete_a_bucket_without_the_certificate(
    s3_server_status: s3_server.ServerStatus, s3_url: str
) -> None:
    """`GET /col/delete?collection=<bucket>` on the master dropped a bucket's data, with no
    credentials at all, before the internal ports demanded mutual TLS."""
    store = open_store(s3_url)
    store.put_object("_probe/keep", b"still here")
    master = s3_server_status.ports["master.port"]
    for path in (f"/col/delete?collection={store.bucket}", "/dir/assign", "/vol/grow?count=9"):
        assert plain_http(master, "GET", path) in (None, 400)
    stranger = ssl.create_default_context(cafile=str(tls_files(s3_server_status.data_dir).ca))
    assert "CERTIFICATE_REQUIRED" in str(tls_reply(master, stranger))
    assert store.get_object("_probe/keep")[0] == b"still here"


def test_grpc_clients_without_the_certificate_are_refused(
    s3_server_status: s3_server.ServerStatus, s3_url: str, tmp_path: Path
) -> None:
    """`weed shell`, a real gRPC client of master and filer: refused without the
    certificate, served with the data directory's security.toml (the control)."""
    open_store(s3_url).put_object("_probe/x", b"x")  # the test bucket exists
    ports = s3_server_status.ports
    shell = [
        s3_server.weed_binary(),
        "shell",
        f"-master=127.0.0.1:{ports['master.port']}",
        f"-filer=127.0.0.1:{ports['filer.port']}",
    ]
    stranger_dir = tmp_path / "no-certificate"
    stranger_dir.mkdir()

    def ls(config_dir: Path, timeout: float) -> str:
        try:
            done = subprocess.run(
                [shell[0], f"-config_dir={config_dir}", *shell[1:]],
                input="fs.ls /buckets\nexit\n",
                capture_output=True,
                text=True,
                timeout=timeout,
                cwd=tmp_path,
            )
        except subprocess.TimeoutExpired as exc:  # still dialing: whatever it printed so far
            partial = exc.stdout or ""
            return partial.decode() if isinstance(partial, bytes) else partial
        return done.stdout

    assert "sandforge-test" not in ls(stranger_dir, timeout=15)
    owner_dir = s3_server_status.data_dir / "weed"
    assert (owner_dir / SECURITY_FILE).is_file()
    assert "sandforge-test" in ls(owner_dir, timeout=120)


def test_dev_server_files_are_private(s3_server_status: s3_server.ServerStatus) -> None:
    data = s3_server_status.data_dir
    tls = tls_files(data)
    for folder in (data, data / "weed", tls.ca.parent):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    for path in (data / "s3.json", data / "weed" / SECURITY_FILE, tls.key, tls.cert):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert not (tls.ca.parent / "ca.key").exists()  # nobody can mint another certificate
