"""Signing keys and trust lists as users give them: `sandforge keys`, --trust, the env vars,
and catalogs written before the signer column existed."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from bundle_factory import make_task
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sandforge.storage.catalog import PARTS, SCHEMA, catalog_row, query
from sandforge.storage.local import LocalStore
from sandforge.storage.signing import (
    KEY_ENV,
    KEY_FILE_ENV,
    TRUSTED_ENV,
    Signer,
    SigningKeyError,
    Trust,
    default_signer,
    parse_public_key,
    signed_by,
)

from sandforge.cli import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, main


@pytest.mark.parametrize("words", [["keys"], ["keys", "init"], ["keys", "show"]], ids=" ".join)
def test_keys_commands_have_help(words: list[str], capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*words, "--help"])
    assert exit_info.value.code == 0 and "usage: sandforge" in capsys.readouterr().out


def test_keys_init_and_show(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv(KEY_FILE_ENV, str(tmp_path / "k" / "signing.pem"))
    assert main(["keys", "show"]) == EXIT_FAILED
    assert "sandforge keys init" in capsys.readouterr().err
    assert main(["keys", "init", "--json"]) == EXIT_OK
    made = json.loads(capsys.readouterr().out)
    assert main(["keys", "show", "--json"]) == EXIT_OK
    shown = json.loads(capsys.readouterr().out)
    assert made == shown and shown["key_id"] == default_signer().key_id
    assert parse_public_key(shown["public_key"]) is not None

    other = tmp_path / "other.pem"
    assert main(["keys", "init", "--out", str(other)]) == EXIT_OK
    printed = capsys.readouterr()
    assert f"SANDFORGE_SIGNING_KEY_FILE={other}" in printed.err
    assert main(["keys", "show", "--key", str(other)]) == EXIT_OK
    assert capsys.readouterr().out.strip() == printed.out.strip() != shown["public_key"]


def test_the_key_in_the_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    monkeypatch.setenv(KEY_ENV, pem.decode())
    expected = Signer(key, "test")
    assert default_signer().key_id == expected.key_id
    store = LocalStore(tmp_path)
    store.publish(*make_task())
    assert signed_by(store.read_manifest("toy-rmse", 1)) == expected.key_id
    assert main(["keys", "show"]) == EXIT_OK
    assert capsys.readouterr().out.strip() == expected.public_text
    monkeypatch.setenv(KEY_ENV, "not a key")
    with pytest.raises(SigningKeyError, match=f"^{KEY_ENV}: not an unencrypted Ed25519"):
        default_signer()


def test_trusted_keys_in_every_form(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    signers = [Signer(Ed25519PrivateKey.generate(), str(n)) for n in range(3)]
    pem = tmp_path / "second.pem"
    pem.write_bytes(
        signers[1].public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    text = tmp_path / "third.pub"
    text.write_text(signers[2].public_text + "\n")
    monkeypatch.setenv(TRUSTED_ENV, f"{pem}\n{text}")
    local = default_signer().key_id  # the local key is trusted too
    trust = Trust.default([signers[0].public_text])
    assert set(trust.keys) == {s.key_id for s in signers} | {local}


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("ed25519:AAAA", "is not an Ed25519 key"),
        ("no-such-file.pub", "neither a public key"),
        ("ed25519:" + "A" * 200, "..."),  # quoted, but kept to one short line
    ],
)
def test_bad_trusted_keys_are_bad_input(
    value: str, problem: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    args = ["pull", "--store", str(tmp_path), "--id", "x", "--out", str(tmp_path / "o")]
    assert main([*args, "--trust", value]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "--trust" in err and problem in err and len(err) < 300


def test_bad_trusted_keys_env_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    store = LocalStore(tmp_path)
    store.publish(*make_task("env-task"))
    monkeypatch.setenv(TRUSTED_ENV, "ed25519:not-base64!")
    assert main(["inspect", str(tmp_path / "env-task" / "1")]) == EXIT_BAD_INPUT
    assert TRUSTED_ENV in capsys.readouterr().err


def test_catalog_written_before_the_signer_column_still_reads(tmp_path: Path) -> None:
    """Stores catalogued by an older sandforge: their parts lack `signer_key_id`."""
    store = LocalStore(tmp_path)
    manifest, files = make_task("old-task")
    store.publish(manifest, files)
    row = catalog_row(store.read_manifest("old-task", 1))
    del row["signer_key_id"]
    old_schema = pa.schema([f for f in SCHEMA if f.name != "signer_key_id"])
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist([row], schema=old_schema), buffer)
    store.put_object(f"{PARTS}/old-task@1.parquet", buffer.getvalue())
    rows = query(store)
    assert [(r["task_id"], r["signer_key_id"]) for r in rows] == [("old-task", None)]
    assert query(store, "signer_key_id IS NULL")[0]["task_id"] == "old-task"
