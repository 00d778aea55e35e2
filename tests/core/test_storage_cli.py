"""The storage commands' contract: `storage up|down|status`, `catalog`, `pull`, `export`;
clear messages and exit codes, including wrong credentials and an unreachable endpoint."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import pytest
from bundle_factory import make_task
from patience import patience
from sandforge.storage import s3_server
from sandforge.storage.backends import open_store
from sandforge.storage.bundle import verify_bundle
from sandforge.storage.catalog import publish_and_catalog
from sandforge.storage.s3_server import free_port

from sandforge.cli import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, main

NEW_COMMANDS = [
    ["storage"],
    ["storage", "up"],
    ["storage", "down"],
    ["storage", "status"],
    ["catalog"],
    ["catalog", "rebuild"],
    ["catalog", "compact"],
    ["pull"],
    ["export"],
    ["grade"],
]


@pytest.mark.parametrize("words", NEW_COMMANDS, ids=" ".join)
def test_every_new_command_has_help(words: list[str], capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*words, "--help"])
    assert exit_info.value.code == 0
    assert "usage: sandforge" in capsys.readouterr().out


@pytest.fixture
def s3(s3_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("SANDFORGE_CACHE", str(tmp_path / "cache"))
    store = open_store(s3_url)
    publish_and_catalog(store, *make_task("alpha"))
    publish_and_catalog(store, *make_task("gamma", binary=True))
    return s3_url


def _json(capsys: pytest.CaptureFixture) -> object:
    return json.loads(capsys.readouterr().out)


def test_catalog_pull_and_export_commands(
    s3: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert main(["catalog", "--store", s3, "--where", "metric = 'rmse'", "--json"]) == EXIT_OK
    rows = _json(capsys)
    assert [(r["task_id"], r["version"], r["is_latest"]) for r in rows] == [("alpha", 1, True)]
    assert rows[0]["created_at"].endswith("+00:00")
    assert main(["catalog", "--store", s3]) == EXIT_OK
    assert "2 bundle(s)" in capsys.readouterr().out
    assert main(["catalog", "rebuild", "--store", s3, "--json"]) == EXIT_OK
    assert _json(capsys) == {"store": s3, "rows": 2, "problems": []}

    out = tmp_path / "pulled"
    args = ["pull", "--store", s3, "--where", "task_type = 'binary'", "--out", str(out)]
    assert main([*args, "--json"]) == EXIT_OK
    assert _json(capsys)["pulled"] == ["gamma@1"]
    verify_bundle(out / "gamma" / "1")
    assert main(args) == EXIT_OK
    assert "0 pulled, 1 already verified" in capsys.readouterr().err

    args = ["pull", "--store", s3, "--id", "alpha,gamma@1", "--out", str(tmp_path / "m")]
    assert main([*args, "--layout", "mlebench", "--json"]) == EXIT_OK
    assert _json(capsys)["task_ids"] == ["alpha", "gamma"]
    assert (tmp_path / "m" / "competitions" / "alpha" / "grade.py").is_file()

    export = ["export", "--store", s3, "--layout", "mledojo", "--out", str(tmp_path / "d")]
    assert main([*export, "--json"]) == EXIT_OK
    assert _json(capsys)["task_ids"] == ["alpha", "gamma"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--id", "nope"], "no bundle 'nope'"),
        (["--id", "alpha@3"], "has no version 3"),
        (["--where", "no_column = 1"], "no_column"),
    ],
)
def test_pull_bad_selection_is_bad_input(
    s3: str, tmp_path: Path, capsys: pytest.CaptureFixture, args: list[str], message: str
) -> None:
    code = main(["pull", "--store", s3, *args, "--out", str(tmp_path / "out")])
    assert code == EXIT_BAD_INPUT
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_pull_of_a_tampered_bundle_fails_naming_the_file(
    s3: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    store = open_store(s3)
    key = f"{store.prefix}/alpha/1/prepared/public/train.csv"  # type: ignore[attr-defined]
    store.client.put_object(Bucket=store.bucket, Key=key, Body=b"id,x,y\n")  # type: ignore[attr-defined]
    code = main(["pull", "--store", s3, "--id", "alpha", "--id", "gamma", "--out", str(tmp_path)])
    assert code == EXIT_FAILED
    err = capsys.readouterr().err
    assert "1 pulled, 0 already verified, 1 failed" in err
    assert "alpha@1:" in err and "prepared/public/train.csv: sha256 mismatch" in err
    assert not (tmp_path / "alpha").exists()


def test_wrong_credentials_and_unreachable_endpoint_are_clear(
    s3: str, tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = str(tmp_path / "out")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret")
    for command in (
        ["catalog", "--store", s3],
        ["pull", "--store", s3, "--id", "alpha", "--out", out],
    ):
        assert main(command) == EXIT_FAILED
        err = capsys.readouterr().err
        assert "credentials were rejected" in err and "wrong-secret" not in err

    monkeypatch.setenv("SANDFORGE_S3_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    assert main(["export", "--store", s3, "--layout", "sandmle", "--out", out]) == EXIT_FAILED
    assert "cannot reach the endpoint" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:  # refused by argparse: usage, then exit 2
        main(["catalog", "--store", "ftp://nowhere"])
    assert info.value.code == EXIT_BAD_INPUT
    assert "unsupported store 'ftp://nowhere'" in capsys.readouterr().err


def test_storage_up_status_down(
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    s3_server_status: s3_server.ServerStatus,
) -> None:
    for var in s3_server_status.env():
        monkeypatch.delenv(var, raising=False)  # restored afterwards: `up` sets them
    slow_start = partial(s3_server.up, timeout=patience(s3_server.START_TIMEOUT))
    monkeypatch.setattr(s3_server, "up", slow_start)  # the CLI's start-up, given the machine
    data_dir, port = tmp_path / "s3", free_port()
    try:
        assert main(["storage", "up", "--data-dir", str(data_dir), "--port", str(port)]) == EXIT_OK
        captured = capsys.readouterr()
        assert f"export SANDFORGE_S3_ENDPOINT=http://127.0.0.1:{port}" in captured.out
        assert "bucket 'sandforge' is ready" in captured.err
        assert main(["storage", "status", "--data-dir", str(data_dir), "--json"]) == EXIT_OK
        status = _json(capsys)
        assert status["running"] and status["env"]["AWS_ACCESS_KEY_ID"].startswith("SF")

        taken = s3_server_status.port  # the test session's server listens there
        other = ["storage", "up", "--data-dir", str(tmp_path / "other"), "--port", str(taken)]
        assert main(other) == EXIT_FAILED
        assert f"port {taken} on 127.0.0.1 is already in use" in capsys.readouterr().err
    finally:
        assert main(["storage", "down", "--data-dir", str(data_dir)]) == EXIT_OK
    assert "stopped" in capsys.readouterr().err
    assert main(["storage", "status", "--data-dir", str(data_dir)]) == EXIT_FAILED
    assert "stopped" in capsys.readouterr().out
    assert (data_dir / "s3.json").is_file()  # credentials and data stay for the next `up`


def test_the_cli_offers_every_layout() -> None:
    from sandforge.storage.layouts import LAYOUTS

    from sandforge.commands.storage import LAYOUT_NAMES  # kept import-free for fast --help

    assert tuple(LAYOUTS) == LAYOUT_NAMES
