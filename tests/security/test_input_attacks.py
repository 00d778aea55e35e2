"""Attacks on what sandforge reads: seed cards, command-line arguments, the local store under
concurrent publishers, junk in the catalog, and hostile `--where` conditions.

Each attack asserts containment: the exit code (2 for bad input), a message naming the file,
field or argument and the problem, no hang (every child process runs under a timeout), and
nothing published, created or half-written.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from bundle_factory import make_task
from patience import patience
from sandforge.seeds.registry import CARDS_DIR
from sandforge.seeds.yaml_files import MAX_FILE_BYTES
from sandforge.storage.backends import open_store
from sandforge.storage.bundle import verify_bundle
from sandforge.storage.catalog import CatalogQueryError, publish_and_catalog, query
from sandforge.storage.local import LocalStore

from sandforge.cli import EXIT_BAD_INPUT, EXIT_OK, main

TESTS = Path(__file__).resolve().parents[1]
CARD = "spaceship-titanic"
BOMB = "\n".join(
    ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
)  # 9^10 (3.5 billion) strings from under 1 KB


def run(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """A real child process, killed if it outlives `timeout` (scaled for the machine)."""
    return subprocess.run(
        [sys.executable, *argv], capture_output=True, text=True, timeout=patience(timeout)
    )


def cli(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    """`sandforge ARGS` in this process: (exit code, stdout, stderr), argparse errors too."""
    try:
        code = main(list(args))
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def base_card() -> str:
    return (CARDS_DIR / f"{CARD}.yaml").read_text(encoding="utf-8")


# --- seed cards ----------------------------------------------------------------------------


def _bomb_in_a_field(path: Path) -> None:  # a real card whose summary holds the bomb
    path.write_text(base_card() + "\nx_lol:\n" + "\n".join("  " + ln for ln in BOMB.split("\n")))


def _deep_nesting(path: Path) -> None:
    path.write_text(base_card() + "\nquirks: " + "[" * 5000 + "]" * 5000 + "\n")


def _deep_key(path: Path) -> None:  # nesting inside a complex key, past the recursion limit
    path.write_text("? " + "[" * 5000 + "]" * 5000 + "\n: value\n")


def _huge_integer(path: Path) -> None:
    path.write_text(base_card() + f"\noriginal_train_rows: {'9' * 5000}\n")


def _hex_integer(path: Path) -> None:
    path.write_text(base_card() + f"\noriginal_train_rows: 0x{'f' * 400}\n")


def _huge_file(path: Path) -> None:
    path.write_text(base_card() + "\n# " + "x" * (10 * MAX_FILE_BYTES) + "\n")


def _sparse_10_gb(path: Path) -> None:
    with path.open("wb") as handle:
        handle.truncate(10 * 1024**3)


def _binary_garbage(path: Path) -> None:
    path.write_bytes(bytes(range(256)) * 8)


def _nul_bytes(path: Path) -> None:
    path.write_text(base_card().replace("title:", "title: \x00\x00"))


def _top_level_list(path: Path) -> None:
    path.write_text("- id: spaceship-titanic\n- metric: accuracy\n")


def _unknown_key(path: Path) -> None:
    path.write_text(base_card() + "\nexecute: rm -rf /\n")


def _duplicate_key(path: Path) -> None:  # a reviewer reads the first, the loader the last
    path.write_text(base_card() + "\nmetric: rmse\n")


def _python_tag(path: Path) -> None:
    marker = path.parent / "pwned"
    path.write_text(f"id: !!python/object/apply:os.system ['touch {marker}']\n")


def _fifo(path: Path) -> None:  # nobody ever writes: reading would block forever
    os.mkfifo(path)


def _dev_zero(path: Path) -> None:  # an endless stream
    path.symlink_to("/dev/zero")


CARD_ATTACKS: list[tuple[str, Callable[[Path], None], list[str]]] = [
    ("alias-bomb", lambda p: p.write_text(BOMB + "\n"), ["field 'a0'", "anchors and aliases"]),
    ("alias-bomb-in-a-card", _bomb_in_a_field, ["field 'x_lol.a0'", "anchors and aliases"]),
    ("deep-nesting", _deep_nesting, ["field 'quirks.0.0", "nested deeper than 12 levels"]),
    ("deep-complex-key", _deep_key, ["nested deeper than 12 levels"]),
    ("huge-integer", _huge_integer, ["field 'original_train_rows'", "integer too large"]),
    ("huge-hex-integer", _hex_integer, ["field 'original_train_rows'", "integer too large"]),
    ("huge-file", _huge_file, ["too large", f"at most {MAX_FILE_BYTES}"]),
    ("sparse-10-gb-file", _sparse_10_gb, ["too large"]),
    ("binary-garbage", _binary_garbage, ["not UTF-8 text"]),
    ("nul-bytes", _nul_bytes, ["not valid YAML"]),
    ("top-level-list", _top_level_list, ["must be a YAML mapping"]),
    ("unknown-key", _unknown_key, ["field 'execute'", "Extra inputs are not permitted"]),
    ("duplicate-key", _duplicate_key, ["field 'metric'", "duplicate key"]),
    ("python-object-tag", _python_tag, ["not valid YAML", "python/object/apply"]),
    ("fifo", _fifo, ["not a regular file"]),
    ("dev-zero", _dev_zero, ["not a regular file"]),
]


@pytest.mark.parametrize(
    ("write", "expected"),
    [attack[1:] for attack in CARD_ATTACKS],
    ids=[attack[0] for attack in CARD_ATTACKS],
)
def test_seeds_validate_contains_a_hostile_card(
    tmp_path: Path, write: Callable[[Path], None], expected: list[str]
) -> None:
    card = tmp_path / f"{CARD}.yaml"
    write(card)
    result = run("-m", "sandforge.cli", "seeds", "validate", str(card), timeout=30)
    assert result.returncode == EXIT_BAD_INPUT, result.stderr
    assert "Traceback" not in result.stderr
    message = " ".join(result.stderr.split())  # rich may wrap a long line
    assert str(card) in message
    for part in expected:
        assert part in message
    assert not (tmp_path / "pwned").exists()


def test_a_fifo_in_a_card_folder_is_named_and_the_rest_validated(tmp_path: Path) -> None:
    (tmp_path / f"{CARD}.yaml").write_text(base_card())
    os.mkfifo(tmp_path / "zz-pipe.yaml")
    result = run("-m", "sandforge.cli", "seeds", "validate", str(tmp_path), timeout=30)
    assert result.returncode == EXIT_BAD_INPUT
    assert f"ok {tmp_path / CARD}.yaml" in result.stderr
    assert "zz-pipe.yaml: not a regular file" in result.stderr


GENERATE_WITH_CARDS = """
import sys
from pathlib import Path

import sandforge.seeds.registry as registry

registry.CARDS_DIR = Path(sys.argv[1])  # the shipped folder, replaced by the attacker's
from sandforge.cli import main

sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.parametrize("seeds", ["all", CARD])
def test_generate_refuses_an_alias_bomb_among_the_cards(tmp_path: Path, seeds: str) -> None:
    cards = tmp_path / "cards"
    cards.mkdir()
    (cards / f"{CARD}.yaml").write_text(base_card())
    _bomb_in_a_field(cards / "zz-bomb.yaml")
    store = tmp_path / "store"
    argv = ["generate", "--seeds", seeds, "--per-seed", "1", "--store", str(store)]
    result = run("-c", GENERATE_WITH_CARDS, str(cards), *argv, timeout=60)
    assert result.returncode == EXIT_BAD_INPUT, result.stderr[-2000:]
    assert "zz-bomb.yaml: field 'x_lol.a0': YAML anchors and aliases" in result.stderr
    assert not store.exists()  # refused before anything ran


# --- command-line arguments ------------------------------------------------------------------

BAD_ARGUMENTS: list[tuple[str, list[str], str]] = [
    ("empty-seed-list", ["generate", "--seeds", ""], "empty seed list"),
    ("only-commas", ["generate", "--seeds", " , ,"], "empty seed list"),
    ("store-s3-no-bucket", ["catalog", "--store", "s3://"], "expected s3://bucket"),
    ("store-s3-empty-bucket", ["catalog", "--store", "s3:///x"], "expected s3://bucket"),
    ("store-s3-bad-bucket", ["pull", "--store", "s3://Bad_B", "--id", "x", "--out", "o"], "Bad_B"),
    ("store-s3-dot-dot", ["catalog", "--store", "s3://bucket/../up"], "'..'"),
    ("store-ftp", ["export", "--store", "ftp://x", "--out", "o"], "unsupported store 'ftp://x'"),
    ("store-file-relative", ["catalog", "--store", "file://relative"], "absolute path"),
    ("store-empty", ["generate", "--store", "", "--seeds", CARD], "empty store"),
    ("store-rebuild-ftp", ["catalog", "rebuild", "--store", "ftp://x"], "unsupported store"),
    ("port-too-big", ["storage", "up", "--port", "999999"], "port must be 1-65535"),
    ("port-negative", ["storage", "up", "--port", "-1"], "port must be 1-65535"),
    ("port-not-a-number", ["server", "up", "--port", "abc"], "not a port number: 'abc'"),
    ("port-zero", ["server", "up", "--port", "0"], "port must be 1-65535"),
    ("host-with-space", ["server", "up", "--host", "bad host"], "not a host name"),
    ("bucket-name", ["storage", "up", "--bucket", "Bad!!"], "invalid S3 bucket name 'Bad!!'"),
    ("empty-where", ["catalog", "--where", "  "], "empty condition"),
    (
        "workers-zero",
        ["pull", "--store", ".", "--id", "x", "--out", "o", "--workers", "0"],
        "must be a positive integer, got 0",
    ),
    ("budget-nan", ["generate", "--budget", "nan"], "must be a positive number"),
    ("unknown-provider", ["generate", "--seeds", CARD, "--provider", "evil"], "'evil'"),
]


@pytest.mark.parametrize(
    ("args", "expected"),
    [case[1:] for case in BAD_ARGUMENTS],
    ids=[case[0] for case in BAD_ARGUMENTS],
)
def test_a_bad_argument_exits_2_naming_it(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
    args: list[str],
    expected: str,
) -> None:
    monkeypatch.chdir(tmp_path)  # whatever a command might create would land here
    code, _, err = cli(capsys, *args)
    assert code == EXIT_BAD_INPUT
    assert expected in err
    assert "Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # no store, output or server data dir created


def test_port_out_of_range_in_a_real_process_is_a_usage_error() -> None:
    result = run("-m", "sandforge.cli", "storage", "up", "--port", "999999", timeout=30)
    assert result.returncode == EXIT_BAD_INPUT
    assert "argument --port: port must be 1-65535, got 999999" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "command",
    [
        ["catalog"],
        ["catalog", "rebuild"],
        ["catalog", "compact"],
        ["pull", "--where", "true", "--out", "out"],
        ["export", "--out", "out"],
    ],
    ids=" ".join,
)
def test_reading_a_missing_local_store_is_an_error_not_an_empty_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, command
) -> None:
    monkeypatch.chdir(tmp_path)
    missing = tmp_path / "no-such-store"
    code, out, err = cli(capsys, *command, "--store", str(missing))
    assert code == EXIT_BAD_INPUT
    assert f"no store at {missing}: the folder does not exist" in err
    assert out == ""  # no table, no JSON
    assert list(tmp_path.iterdir()) == []  # not created by the attempt


@pytest.mark.parametrize(
    "command",
    [
        ["pull", "--store", ".", "--id", "x", "--out"],
        ["storage", "status", "--data-dir"],
    ],
    ids=lambda words: words[0],
)
def test_a_file_given_as_a_folder_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture, command: list[str]
) -> None:
    afile = tmp_path / "a-file"
    afile.write_text("precious\n")
    code, _, err = cli(capsys, *command, str(afile))
    assert code == EXIT_BAD_INPUT
    assert f"{afile}: exists and is not a folder" in err
    assert afile.read_text() == "precious\n"


@pytest.mark.parametrize("command", ["inspect", "regenerate", "grade"])
def test_a_bundle_argument_that_is_no_bundle_is_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture, command: str
) -> None:
    extra = [str(tmp_path / "submission.csv")] if command == "grade" else []
    for target, problem in ((tmp_path / "nothing", "does not exist"), (tmp_path, "no manifest")):
        code, _, err = cli(capsys, command, str(target), *extra)
        assert code == EXIT_BAD_INPUT
        assert f"no bundle at {target}: it" in err and problem in err


# --- concurrent local publishers -------------------------------------------------------------

PUBLISHER = """
import json, sys, time
from pathlib import Path

sys.path.insert(0, sys.argv[1])  # tests/, for bundle_factory
from bundle_factory import make_task
from sandforge.storage.bundle import verify_bundle
from sandforge.storage.catalog import publish_and_catalog
from sandforge.storage.backends import open_store

store, ready, go, salt = sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]), int(sys.argv[5])
manifest, files = make_task("race-task", salt=salt)
store = open_store(store)
ready.touch()
while not go.exists():  # all six start publishing at once
    time.sleep(0.001)
print(json.dumps([*publish_and_catalog(store, manifest, files), manifest["content_hash"]]))
"""


def publish_from_six_processes(tmp_path: Path, salts: list[int]) -> list[list]:
    store, go = tmp_path / "store", tmp_path / "go"
    argv = [sys.executable, "-c", PUBLISHER, str(TESTS), str(store)]
    procs = [
        subprocess.Popen(
            [*argv, str(tmp_path / f"r{i}"), str(go), str(salt)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i, salt in enumerate(salts)
    ]
    try:
        deadline = time.monotonic() + patience(60)
        while not all((tmp_path / f"r{i}").exists() for i in range(len(salts))):
            assert time.monotonic() < deadline, "publishers did not start"
            assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
            time.sleep(0.01)
        go.touch()
        outputs = [p.communicate(timeout=patience(60)) for p in procs]
    finally:
        for p in procs:
            p.kill()
    for p, (_, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err
    return [json.loads(out) for out, _ in outputs]


def _no_staging_left(store: LocalStore) -> None:
    assert sorted(p.name for p in (store.root / "race-task").iterdir()) == sorted(
        str(v) for v in store.versions("race-task")
    )


def test_six_publishers_of_the_same_content_store_one_version(tmp_path: Path) -> None:
    results = publish_from_six_processes(tmp_path, [0] * 6)
    assert {version for version, _, _ in results} == {1}
    assert sum(created for _, created, _ in results) == 1
    store = LocalStore(tmp_path / "store")
    assert store.versions("race-task") == [1]
    assert verify_bundle(store.bundle_path("race-task", 1))["content_hash"] == results[0][2]
    _no_staging_left(store)
    assert [(r["task_id"], r["version"]) for r in query(store)] == [("race-task", 1)]


def test_six_publishers_of_different_content_get_distinct_versions(tmp_path: Path) -> None:
    results = publish_from_six_processes(tmp_path, list(range(6)))
    assert sorted(version for version, _, _ in results) == [1, 2, 3, 4, 5, 6]
    assert all(created for _, created, _ in results)
    store = LocalStore(tmp_path / "store")
    for version, _, content_hash in results:  # each version holds its own publisher's bytes
        assert (
            verify_bundle(store.bundle_path("race-task", version))["content_hash"] == content_hash
        )
    _no_staging_left(store)
    assert len(query(store)) == 6


# --- junk in the catalog ---------------------------------------------------------------------

JUNK = {
    "_catalog/parts/garbage.parquet": bytes(range(256)) * 4,
    "_catalog/parts/empty.parquet": b"",
    "_catalog/notes.txt": b"not a table\n",
}


def _junk_tables() -> dict[str, bytes]:
    foreign = pa.table({"task_id": ["x"], "version": ["not-an-int"], "content_hash": ["h"]})
    sink = pa.BufferOutputStream()
    pq.write_table(foreign, sink)
    return {**JUNK, "_catalog/parts/foreign.parquet": sink.getvalue().to_pybytes()}


def _published(store_url: str) -> Path | None:
    store = open_store(store_url)
    for name in ("alpha", "beta"):
        publish_and_catalog(store, *make_task(name))
    return store.root if isinstance(store, LocalStore) else None


def test_junk_under_the_local_catalog_is_skipped_and_named(
    tmp_path: Path, capsys: pytest.CaptureFixture, caplog: pytest.LogCaptureFixture
) -> None:
    root = _published(str(tmp_path / "store"))
    assert root is not None
    for name, data in _junk_tables().items():
        (root / name).write_bytes(data)
    # the last part truncated mid-file: its footer is gone
    part = next((root / "_catalog" / "parts").glob("alpha@1.parquet"))
    (root / "_catalog/parts/cut@1.parquet").write_bytes(part.read_bytes()[:-20])
    with caplog.at_level(logging.WARNING, logger="sandforge.storage.catalog"):
        code, out, _ = cli(capsys, "catalog", "--store", str(root), "--json")
    assert code == EXIT_OK
    assert [row["task_id"] for row in json.loads(out)] == ["alpha", "beta"]
    warned = caplog.text
    for name in [*_junk_tables(), "_catalog/parts/cut@1.parquet"]:
        assert f"skipped junk {root}/{name}" in warned


def test_compact_leaves_junk_parts_in_place_and_folds_the_rest(tmp_path: Path) -> None:
    root = _published(str(tmp_path / "store"))
    assert root is not None
    for name, data in _junk_tables().items():
        (root / name).write_bytes(data)
    code = main(["catalog", "compact", "--store", str(root)])
    assert code == EXIT_OK
    parts = sorted(p.name for p in (root / "_catalog" / "parts").iterdir())
    assert parts == ["empty.parquet", "foreign.parquet", "garbage.parquet"]
    assert [r["task_id"] for r in query(open_store(root))] == ["alpha", "beta"]


def test_junk_under_the_s3_catalog_is_skipped_and_named(
    s3_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _published(s3_url)
    store = open_store(s3_url)
    junk = _junk_tables()  # (SeaweedFS normalises unsafe key names: none to plant here)
    for name, data in junk.items():
        store.client.put_object(Bucket=store.bucket, Key=f"{store.prefix}/{name}", Body=data)
    cache = tmp_path / "cache"
    with caplog.at_level(logging.WARNING, logger="sandforge.storage.catalog"):
        rows = query(store, cache_dir=cache)
    assert [row["task_id"] for row in rows] == ["alpha", "beta"]
    for name in junk:
        assert f"skipped junk {s3_url}/{name}" in caplog.text
    downloaded = {p.relative_to(cache).as_posix() for p in cache.rglob("*") if p.is_file()}
    assert "_catalog/notes.txt" not in downloaded  # never fetched


# --- hostile --where conditions --------------------------------------------------------------


@pytest.fixture
def small_store(tmp_path: Path) -> Path:
    root = _published(str(tmp_path / "store"))
    assert root is not None
    return root


FILE_ATTACKS = [
    ("read-a-file", "(SELECT count(*) FROM read_csv('/etc/passwd')) > 0", "disabled"),
    ("glob-the-disk", "(SELECT count(*) FROM glob('/etc/*')) > 0", "disabled"),
    ("copy-out", "true) ; COPY bundles TO 'leak.csv' ; SELECT (true", "one SQL condition"),
    ("attach", "true) ; ATTACH 'other.db' ; SELECT (true", "one SQL condition"),
    ("re-enable-files", "true) ; SET enable_external_access = true ; SELECT (1", "one SQL"),
    ("install-extension", "true) ; INSTALL httpfs ; SELECT (1", "one SQL condition"),
]


@pytest.mark.parametrize(
    ("where", "expected"),
    [case[1:] for case in FILE_ATTACKS],
    ids=[case[0] for case in FILE_ATTACKS],
)
def test_where_cannot_touch_files(
    small_store: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
    where: str,
    expected: str,
) -> None:
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    code, out, err = cli(capsys, "catalog", "--store", str(small_store), "--where", where)
    assert code == EXIT_BAD_INPUT
    assert expected in err
    assert "root:" not in err + out  # nothing of /etc/passwd shown
    assert list(work.iterdir()) == []  # nothing written


def test_where_that_explodes_memory_is_stopped(
    small_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    pulled = tmp_path / "pulled"
    bomb = "(SELECT list(x) FROM range(300000000) t(x)) IS NOT NULL"
    argv = ["pull", "--store", str(small_store), "--where", bomb, "--out", str(pulled)]
    code, _, err = cli(capsys, *argv)
    assert code == EXIT_BAD_INPUT
    assert "stopped: it needs more than 1GB of memory" in err
    assert not pulled.exists() or list(pulled.iterdir()) == []  # nothing pulled


def test_where_that_runs_forever_is_interrupted(small_store: Path) -> None:
    store = open_store(small_store)
    forever = "(SELECT count(*) FROM range(10000000000000)) > 0"
    with pytest.raises(CatalogQueryError, match=r"stopped: it ran longer than 1 s"):
        query(store, forever, timeout=1)
    assert [r["task_id"] for r in query(store, "is_latest")] == ["alpha", "beta"]  # still usable


def test_where_that_runs_forever_exits_2_from_the_cli(small_store: Path) -> None:
    forever = "(SELECT count(*) FROM range(10000000000000)) > 0"
    result = run("-m", "sandforge.cli", "catalog", "--store", str(small_store), "--where", forever)
    assert result.returncode == EXIT_BAD_INPUT
    assert "stopped: it ran longer than 10 s" in result.stderr
    assert result.stdout == ""
