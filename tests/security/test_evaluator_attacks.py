"""Attacks on the evaluator a trainer runs with no timeout and its own privileges, on any path
the agent passes (CONTRACTS.md), and on the MLE-bench / MLE-Dojo wrappers around it.

Every attack runs against a real generated bundle (offline provider, every pipeline stage) as
the trainer runs it: `python evaluator.py --submission_path PATH`, cwd = prepared/public/, a
fresh process. Each one must be contained: exit 1 with a one-line "invalid submission: ..."
message, nothing on stdout, none of the file's content (nor a secret planted in it) in the
message, within a generous wall-clock bound (the target, 0.2 s, is measured by
`python -m bench.evaluator`), and with a peak RSS under 50 MB, read by bench.evaluator's
launcher from getrusage(RUSAGE_CHILDREN) of its only child. RLIMIT_AS and RLIMIT_CPU keep a
failing attack from hurting the machine.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from generated_tasks import generate

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # bench/ is not installed
from sandforge.storage.bundle import MANIFEST
from sandforge.storage.consumer_grades import bundle_config
from sandforge.storage.layouts.mlebench import MLEBench
from sandforge.storage.layouts.mledojo import MLEDojo

from bench.evaluator import Measurement, measure
from sandforge.bundle_files import PRIVATE, PUBLIC

WALL_S = 5.0  # generous: the target is 0.2 s, but the suite runs on loaded machines
RSS_KB = 50 * 1024
SECRET = "s3cr3t-Hunter2-TOKEN"  # planted in hostile files; must never reach a message


@dataclass(frozen=True)
class Task:
    bundle: Path  # the published bundle, untouched
    root: Path  # its copy, attacked: prepared/public, prepared/private
    public: Path
    private: Path
    config: dict
    n_test: int

    @property
    def answers(self) -> Path:
        return self.private / "answer.csv"


@pytest.fixture(scope="module")
def task(tmp_path_factory: pytest.TempPathFactory) -> Task:
    """A generated regression task (rmse: numbers can overflow), copied so attacks may plant
    files beside it without touching the store."""
    store = tmp_path_factory.mktemp("store")
    (bundle,) = generate(store, ["allstate-claims-severity"], metric="rmse")
    root = tmp_path_factory.mktemp("task")
    for part in (PUBLIC, PRIVATE):
        (root / part).mkdir(parents=True)
        for path in (bundle / part).iterdir():
            (root / part / path.name).write_bytes(path.read_bytes())
    config = bundle_config(bundle)
    n_test = len((root / PRIVATE / "answer.csv").read_text().splitlines()) - 1
    return Task(bundle, root, root / PUBLIC, root / PRIVATE, config, n_test)


def run_evaluator(task: Task, submission: str, stdin: Any = subprocess.DEVNULL) -> Measurement:
    """The trainer's call, timed, with the evaluator's own peak RSS: bench.evaluator's
    launcher, a small process whose only child it is, reads getrusage(RUSAGE_CHILDREN)."""
    return measure(task.public, submission, stdin)


def assert_contained(run: Measurement, *fragments: str, leaks: tuple[str, ...] = ()) -> None:
    assert run.returncode == 1, (run.returncode, run.stderr)
    assert run.stdout == ""
    assert run.stderr.startswith("invalid submission: "), run.stderr
    assert run.stderr.count("\n") == 1 and len(run.stderr) < 600, run.stderr
    assert "Traceback" not in run.stderr
    for fragment in fragments:
        assert fragment in run.stderr, (fragment, run.stderr)
    for leak in (SECRET, "\x00", *leaks):
        assert leak not in run.stderr, (leak, run.stderr)
    assert run.seconds < WALL_S, run.seconds
    assert run.max_rss_kb < RSS_KB, run.max_rss_kb


def submission_lines(task: Task, rows: int | None = None) -> list[str]:
    """A valid submission's lines (header + one row per test id, or the first `rows`)."""
    lines = (task.public / "sample_submission.csv").read_text().splitlines()
    return lines if rows is None else lines[: rows + 1]


def with_cell(task: Task, value: str) -> str:
    """A valid submission whose first prediction is `value`."""
    header, first, *rest = submission_lines(task)
    key = first.split(",")[0]
    return "\n".join([header, f"{key},{value}", *rest]) + "\n"


# -- attacks: each returns the --submission_path argument, planting what it needs ---------------

Attack = Callable[[Task, Path], str]


def _write(path: Path, data: str | bytes) -> str:
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return str(path)


def answers_relative(task: Task, tmp: Path) -> str:
    return "../private/answer.csv"


def answers_absolute(task: Task, tmp: Path) -> str:
    return str(task.answers)


def answers_dotted(task: Task, tmp: Path) -> str:
    return "./../private/../private/./answer.csv"


def symlink_to_answers(task: Task, tmp: Path) -> str:
    (tmp / "sub.csv").symlink_to(task.answers)
    return str(tmp / "sub.csv")


def symlink_chain_to_answers(task: Task, tmp: Path) -> str:
    (tmp / "a.csv").symlink_to(task.answers)
    (tmp / "b.csv").symlink_to(tmp / "a.csv")
    return str(tmp / "b.csv")


def hard_link_to_answers(task: Task, tmp: Path) -> str:
    os.link(task.answers, tmp / "sub.csv")
    return str(tmp / "sub.csv")


def folder_link_to_private(task: Task, tmp: Path) -> str:
    (tmp / "d").symlink_to(task.private, target_is_directory=True)  # followed on the way
    return str(tmp / "d" / "answer.csv")


def other_private_file(task: Task, tmp: Path) -> str:
    """A perfect submission kept in private/ (as MLE-bench's gold_submission.csv is)."""
    return _write(task.private / "gold_submission.csv", task.answers.read_bytes())


def hard_link_to_other_private_file(task: Task, tmp: Path) -> str:
    gold = task.private / "gold_copy.csv"
    gold.write_bytes(task.answers.read_bytes())
    os.link(gold, tmp / "sub.csv")
    return str(tmp / "sub.csv")


def fifo(task: Task, tmp: Path) -> str:
    os.mkfifo(tmp / "pipe.csv")  # no writer: a blocking open would wait forever
    return str(tmp / "pipe.csv")


def symlink_to_fifo(task: Task, tmp: Path) -> str:
    os.mkfifo(tmp / "pipe")
    (tmp / "sub.csv").symlink_to(tmp / "pipe")
    return str(tmp / "sub.csv")


def dev_stdin(task: Task, tmp: Path) -> str:
    return "/dev/stdin"  # run with a pipe nobody writes to: see STDIN_PIPE


def proc_fd_0(task: Task, tmp: Path) -> str:
    return "/proc/self/fd/0"


def dev_zero(task: Task, tmp: Path) -> str:
    return "/dev/zero"


def folder_link_to_dev(task: Task, tmp: Path) -> str:
    (tmp / "d").symlink_to("/dev", target_is_directory=True)
    return str(tmp / "d" / "urandom")


def directory(task: Task, tmp: Path) -> str:
    return "."


def unix_socket(task: Task, tmp: Path) -> str:
    path = str(tmp / "s.csv")
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)  # left open until the module ends: a socket file to point at
    _KEEP.append(server)
    return path


def sparse_10_gb(task: Task, tmp: Path) -> str:
    with (tmp / "sub.csv").open("wb") as handle:
        handle.write(submission_lines(task)[0].encode() + b"\n")
        handle.truncate(10 * 1024**3)
    return str(tmp / "sub.csv")


def million_rows(task: Task, tmp: Path) -> str:
    header, first, *_ = submission_lines(task)
    return _write(tmp / "sub.csv", "\n".join([header, *[first] * 1_000_000]) + "\n")


def one_megabyte_header(task: Task, tmp: Path) -> str:
    """Many repeated column names: the old header check was quadratic in them."""
    header = ",".join([task.config["id_column"], *["fare_amount"] * 100_000])[: 1 << 20]
    return _write(tmp / "sub.csv", header + "\n")


def one_megabyte_field(task: Task, tmp: Path) -> str:
    return _write(tmp / "sub.csv", SECRET + "x" * (1 << 20) + "\n")


def one_row_too_many(task: Task, tmp: Path) -> str:
    lines = submission_lines(task)
    return _write(tmp / "sub.csv", "\n".join([*lines, lines[1]]) + "\n")


def value_1e200(task: Task, tmp: Path) -> str:
    return _write(tmp / "sub.csv", with_cell(task, "1e200"))


def value_1e154(task: Task, tmp: Path) -> str:
    """Squares near the float maximum: the old sum of squares overflowed to inf (exit 2)."""
    header, *rows = submission_lines(task)
    huge = [f"{row.split(',')[0]},1e154" for row in rows]
    return _write(tmp / "sub.csv", "\n".join([header, *huge]) + "\n")


def value_1e400(task: Task, tmp: Path) -> str:
    return _write(tmp / "sub.csv", with_cell(task, "1e400"))


def value_nan(task: Task, tmp: Path) -> str:
    return _write(tmp / "sub.csv", with_cell(task, "nan"))


def etc_shadow(task: Task, tmp: Path) -> str:
    return "/etc/shadow"  # readable here (root): its first line must not be quoted


def proc_environ(task: Task, tmp: Path) -> str:
    return "/proc/self/environ"  # the evaluator's own environment, with SECRET in it


def secrets_with_the_id_column(task: Task, tmp: Path) -> str:
    """A CSV that shares the id column: column names may be quoted, cells never."""
    id_column = task.config["id_column"]
    return _write(tmp / "sub.csv", f"{id_column},api_key\n1,{SECRET}\n")


def binary_garbage(task: Task, tmp: Path) -> str:
    return _write(tmp / "sub.csv", b"\xff\xfe\x00" + SECRET.encode() + bytes(range(256)) * 64)


def nul_bytes(task: Task, tmp: Path) -> str:
    """A NUL inside a cell: the message shows it escaped, never raw (a terminal's problem)."""
    return _write(tmp / "sub.csv", with_cell(task, "1.5\x00" + "x" * 30 + SECRET))


def unclosed_quote(task: Task, tmp: Path) -> str:
    lines = submission_lines(task)
    return _write(tmp / "sub.csv", lines[0] + '\n"' + SECRET + "\n" * 1000)


def long_path(task: Task, tmp: Path) -> str:
    return str(tmp / ("x" * 5000))


def path_with_secret(task: Task, tmp: Path) -> str:
    return str(tmp / f"{SECRET}.csv")  # missing; the message names no path


_KEEP: list[socket.socket] = []
STDIN_PIPE = {"dev_stdin", "proc_fd_0"}
ATTACKS: dict[str, tuple[Attack, tuple[str, ...]]] = {
    # name: (attack, fragments the message must hold)
    "answers_relative": (answers_relative, ("hidden answers",)),
    "answers_absolute": (answers_absolute, ("hidden answers",)),
    "answers_dotted": (answers_dotted, ("hidden answers",)),
    "symlink_to_answers": (symlink_to_answers, ("symbolic link",)),
    "symlink_chain_to_answers": (symlink_chain_to_answers, ("symbolic link",)),
    "hard_link_to_answers": (hard_link_to_answers, ("hidden answers",)),
    "folder_link_to_private": (folder_link_to_private, ("hidden answers",)),
    "other_private_file": (other_private_file, ("hidden answers",)),
    "hard_link_to_other_private_file": (hard_link_to_other_private_file, ("hidden answers",)),
    "fifo": (fifo, ("named pipe",)),
    "symlink_to_fifo": (symlink_to_fifo, ("symbolic link",)),
    "dev_stdin": (dev_stdin, ("symbolic link",)),
    "proc_fd_0": (proc_fd_0, ("symbolic link",)),
    "dev_zero": (dev_zero, ("character device",)),
    "folder_link_to_dev": (folder_link_to_dev, ("character device",)),
    "directory": (directory, ("directory",)),
    "unix_socket": (unix_socket, ("socket",)),
    "sparse_10_gb": (sparse_10_gb, ("10737418240 bytes",)),
    "million_rows": (million_rows, ("bytes, more than",)),
    "one_megabyte_header": (one_megabyte_header, ("bytes, more than",)),
    "one_megabyte_field": (one_megabyte_field, ("bytes, more than",)),
    "one_row_too_many": (one_row_too_many, ("more data rows",)),
    "value_1e200": (value_1e200, ("line 2", "out of range")),
    "value_1e154": (value_1e154, ("line 2", "out of range")),
    "value_1e400": (value_1e400, ("line 2", "not a finite number")),
    "value_nan": (value_nan, ("line 2", "not a finite number")),
    "etc_shadow": (etc_shadow, ("not this task's header",)),
    "proc_environ": (proc_environ, ("empty",)),
    "secrets_with_the_id_column": (secrets_with_the_id_column, ("'api_key'",)),
    "binary_garbage": (binary_garbage, ("not UTF-8",)),
    "nul_bytes": (nul_bytes, ("line 2", "not a number", "\\x00")),
    "unclosed_quote": (unclosed_quote, ("fields like the header",)),
    "long_path": (long_path, ("cannot read",)),
    "path_with_secret": (path_with_secret, ("No such file",)),
}


def _shadow_pieces() -> tuple[str, ...]:
    """Pieces of /etc/shadow's first line long enough to recognise (e.g. a password hash)."""
    try:
        first = Path("/etc/shadow").read_text().splitlines()[0]
    except (OSError, IndexError):
        return ()
    return tuple(piece for piece in first.split(":") if len(piece) >= 4)


def test_at_least_22_distinct_attacks() -> None:
    assert len(ATTACKS) >= 22
    assert len({attack for attack, _ in ATTACKS.values()}) == len(ATTACKS)


@pytest.mark.parametrize("name", list(ATTACKS))
def test_attack_is_contained(task: Task, tmp_path: Path, name: str) -> None:
    attack, fragments = ATTACKS[name]
    if name == "etc_shadow" and not os.access("/etc/shadow", os.R_OK):
        fragments = ("cannot open",)  # as a non-root user: refused by the kernel
    argument = attack(task, tmp_path)
    leaks = _shadow_pieces() if name == "etc_shadow" else ()
    if name in STDIN_PIPE:
        read, write = os.pipe()  # a writer that never writes nor closes: reading would hang
        try:
            run = run_evaluator(task, argument, stdin=read)
        finally:
            os.close(read)
            os.close(write)
    else:
        os.environ["SANDFORGE_TEST_SECRET"] = SECRET  # inherited: /proc/self/environ holds it
        try:
            run = run_evaluator(task, argument)
        finally:
            del os.environ["SANDFORGE_TEST_SECRET"]
    assert_contained(run, *fragments, leaks=leaks)


def test_a_valid_submission_still_scores_beside_the_attacks(task: Task, tmp_path: Path) -> None:
    """The defences refuse the attacks, not the trainer's ordinary call (same bounds)."""
    run = run_evaluator(task, "sample_submission.csv")
    assert run.returncode == 0, run.stderr
    assert run.seconds < WALL_S and run.max_rss_kb < RSS_KB
    copy = _write(tmp_path / "copy.csv", task.answers.read_bytes())  # a copy is no link
    assert run_evaluator(task, copy).returncode == 0


def test_attacks_leave_the_task_as_it_was(task: Task, tmp_path: Path) -> None:
    """Refusing reads nothing it refuses and writes nothing: answers and evaluator unchanged."""
    before = {path: path.read_bytes() for path in (task.answers, task.public / "evaluator.py")}
    for name in ("answers_relative", "hard_link_to_answers", "fifo", "dev_zero"):
        folder = tmp_path / name
        folder.mkdir()
        assert run_evaluator(task, ATTACKS[name][0](task, folder)).returncode == 1
    assert {path: path.read_bytes() for path in before} == before


# -- the DataFrame wrappers: MLE-bench's grade.py and MLE-Dojo's metric.py ----------------------

WRAPPERS = textwrap.dedent(
    """
    import importlib.util, json, sys, time
    import numpy as np
    import pandas as pd

    def load(path, name):
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    grade_py, metric_py, sample, answers, secret = sys.argv[1:]
    grade = load(grade_py, "grade").grade
    metrics = load(metric_py, "metric").SandforgeMetrics()
    sub, ans = pd.read_csv(sample), pd.read_csv(answers)
    id_column, target = sub.columns[0], sub.columns[1]

    def with_value(value):
        frame = sub.copy()
        frame[target] = frame[target].astype(object)
        frame.loc[0, target] = value
        return frame

    attacks = {
        "one_row_too_many": pd.concat([sub, sub.iloc[:1]]),
        "million_rows": pd.DataFrame({id_column: np.arange(1_000_000), target: 1.0}),
        "hundred_thousand_columns": pd.DataFrame(
            np.zeros((2, 100_000)), columns=[f"c{i}" for i in range(100_000)]
        ),
        "repeated_columns": pd.DataFrame(np.zeros((2, 50_000)), columns=[target] * 50_000),
        "inf": with_value(float("inf")),
        "nan": with_value(float("nan")),
        "1e200": with_value(1e200),
        "1e154_everywhere": sub.assign(**{target: 1e154}),
        "long_cell_quoted_short": with_value("x" * 40 + secret),
        "secret_header": pd.DataFrame({secret: [1]}),
    }
    results = {}
    for name, frame in attacks.items():
        for consumer, call in (("grade.py", lambda f: grade(f, ans)),
                               ("metric.py", lambda f: metrics.evaluate(ans, f))):
            start = time.perf_counter()
            try:
                outcome, message = "scored", repr(call(frame))
            except Exception as exc:
                outcome, message = type(exc).__name__, str(exc)
            results[f"{consumer}:{name}"] = [outcome, message, time.perf_counter() - start]
    print(json.dumps(results))
    """
)


def test_wrappers_refuse_hostile_frames_fast_and_quietly(task: Task, tmp_path: Path) -> None:
    """MLE-bench and MLE-Dojo read the file themselves and hand over DataFrames: the wrappers
    check shape before copying, and refuse bad values with the evaluator's messages."""
    manifest = json.loads((task.bundle / MANIFEST).read_text())
    files = {path: (task.bundle / path).read_bytes() for path in manifest["files"]}
    out = tmp_path / "exports"
    for layout in (MLEBench(), MLEDojo()):
        for path, data in layout.render(manifest, files).items():
            (out / path).parent.mkdir(parents=True, exist_ok=True)
            (out / path).write_bytes(data)
    competition = out / "competitions" / manifest["task_id"]
    paths = [
        competition / "grade.py",
        competition / "utils" / "metric.py",
        task.public / "sample_submission.csv",
        task.answers,
    ]
    run = subprocess.run(
        [sys.executable, "-I", "-B", "-c", WRAPPERS, *map(str, paths), SECRET],
        capture_output=True,
        text=True,
        timeout=300,
        cwd="/",
    )
    assert run.returncode == 0, run.stderr
    results = json.loads(run.stdout)
    assert len(results) == 20
    for name, (outcome, message, seconds) in results.items():
        assert outcome == "InvalidSubmissionError", (name, outcome, message)
        assert SECRET not in message, (name, message)
        assert len(message) < 600 and seconds < WALL_S, (name, message, seconds)
    for consumer in ("grade.py", "metric.py"):
        assert "line 2" in results[f"{consumer}:1e200"][1]
        assert "out of range" in results[f"{consumer}:1e154_everywhere"][1]
        assert "more data rows" in results[f"{consumer}:million_rows"][1]
