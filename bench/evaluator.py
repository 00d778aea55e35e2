"""Benchmark a bundle's evaluator.py on hostile inputs and on the normal case.

    .venv/bin/python -m bench.evaluator                  # generates one task first (~30 s)
    .venv/bin/python -m bench.evaluator --bundle STORE/TASK/VERSION [--runs 20] [--json]

The trainer runs `python evaluator.py --submission_path PATH` (cwd = prepared/public/) with no
timeout, on any path the agent passes. Each input below is run that way, as a fresh process,
and measured by a small launcher process: wall time from spawn to exit, and the evaluator's
own peak RSS from the launcher's `getrusage(RUSAGE_CHILDREN)` (its only child; this process's
memory never counts). Targets: every hostile input (median of `--repeat` runs) <= 0.2 s and
<= 50 MB, and the normal case (the sample submission, `--runs` times) <= 60 ms median. A
hostile input must also be refused (exit 1); the figures are reported either way. Each run
alternates with `python -c pass`, the interpreter's start-up floor, reported beside it: on a
loaded machine both grow, and the difference is what the evaluator itself costs. Benchmarks
report, they do not gate: exit 0 whenever the measurements ran, 1 if the bundle could not be
made, 2 for a bad argument.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
HOSTILE_SECONDS, HOSTILE_MB, NORMAL_MS = 0.2, 50.0, 60.0
SEED = "new-york-city-taxi-fare-prediction"  # a regression task: numbers can overflow

# Run by a fresh interpreter: spawns the command with resource limits as backstops, waits for
# it and prints its exit code, wall and CPU (user + system) seconds and peak RSS (KiB) as JSON.
LAUNCHER = """
import json, resource, subprocess, sys, time
cwd, out, err, *command = sys.argv[1:]
def limits():
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
    resource.setrlimit(resource.RLIMIT_CPU, (30, 30))
with open(out, "wb") as stdout, open(err, "wb") as stderr:
    start = time.perf_counter()
    child = subprocess.Popen(command, cwd=cwd, stdout=stdout, stderr=stderr, preexec_fn=limits)
    try:
        code = child.wait(timeout=60)
    except subprocess.TimeoutExpired:
        child.kill()
        code = child.wait()
    seconds = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
cpu = usage.ru_utime + usage.ru_stime
print(json.dumps({"returncode": code, "seconds": seconds, "cpu_seconds": cpu,
                  "max_rss_kb": usage.ru_maxrss}))
"""


@dataclass(frozen=True)
class Measurement:
    returncode: int
    seconds: float
    cpu_seconds: float  # user + system: what the evaluator itself burns, load or not
    max_rss_kb: int
    stdout: str
    stderr: str


def measure(
    public: Path, submission: str, stdin: Any = subprocess.DEVNULL, python: str = sys.executable
) -> Measurement:
    """One trainer call of the evaluator in `public`, timed and with its own peak RSS."""
    command = [python, "evaluator.py", "--submission_path", submission]
    return measure_command(public, command, stdin)


def measure_command(cwd: Path, command: list[str], stdin: Any = subprocess.DEVNULL) -> Measurement:
    with tempfile.TemporaryDirectory(prefix="sandforge-bench-eval-") as scratch:
        out, err = Path(scratch) / "out", Path(scratch) / "err"
        launcher = subprocess.run(
            [sys.executable, "-I", "-c", LAUNCHER, str(cwd), str(out), str(err), *command],
            stdin=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        figures = json.loads(launcher.stdout)
        return Measurement(
            **figures,
            stdout=out.read_text(errors="replace"),
            stderr=err.read_text(errors="replace"),
        )


# -- hostile inputs: each plants what it needs under `tmp` and returns the path to pass ---------

Hostile = Callable[[Path, Path, Path], str]  # (public, private, tmp) -> --submission_path


def _lines(public: Path) -> list[str]:
    return (public / "sample_submission.csv").read_text().splitlines()


def _write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def _write_bytes(path: Path, data: bytes) -> str:
    path.write_bytes(data * 64)
    return str(path)


def _link(tmp: Path, target: Path, hard: bool = False) -> str:
    link = tmp / "link.csv"
    os.link(target, link) if hard else link.symlink_to(target)
    return str(link)


def _fifo(tmp: Path) -> str:
    os.mkfifo(tmp / "pipe.csv")
    return str(tmp / "pipe.csv")


def _socket(tmp: Path) -> str:
    path = tmp / "socket.csv"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    _OPEN.append(server)
    return str(path)


def _sparse(public: Path, tmp: Path) -> str:
    with (tmp / "sparse.csv").open("wb") as handle:
        handle.write(_lines(public)[0].encode() + b"\n")
        handle.truncate(10 * 1024**3)
    return str(tmp / "sparse.csv")


def _cells(public: Path, value: str) -> str:
    header, *rows = _lines(public)
    return "\n".join([header, *(f"{row.split(',')[0]},{value}" for row in rows)]) + "\n"


def _folder_link(tmp: Path, target: Path) -> Path:
    (tmp / "folder").symlink_to(target, target_is_directory=True)
    return tmp / "folder"


_OPEN: list[socket.socket] = []
HOSTILE: dict[str, Hostile] = {
    "../private/answer.csv": lambda public, private, tmp: "../private/answer.csv",
    "symlink to answers": lambda public, private, tmp: _link(tmp, private / "answer.csv"),
    "hard link to answers": lambda public, private, tmp: _link(tmp, private / "answer.csv", True),
    "folder link to private/": lambda public, private, tmp: str(
        _folder_link(tmp, private) / "answer.csv"
    ),
    "FIFO without a writer": lambda public, private, tmp: _fifo(tmp),
    "/dev/stdin (silent pipe)": lambda public, private, tmp: "/dev/stdin",
    "/dev/zero": lambda public, private, tmp: "/dev/zero",
    "a directory": lambda public, private, tmp: str(tmp),
    "a Unix socket": lambda public, private, tmp: _socket(tmp),
    "10 GB sparse file": lambda public, private, tmp: _sparse(public, tmp),
    "1 MB header": lambda public, private, tmp: _write(
        tmp / "header.csv", ",".join(["fare_amount"] * 100_000)[: 1 << 20] + "\n"
    ),
    "a million rows": lambda public, private, tmp: _write(
        tmp / "rows.csv", "\n".join([_lines(public)[0], *[_lines(public)[1]] * 1_000_000])
    ),
    "one row too many": lambda public, private, tmp: _write(
        tmp / "extra.csv", "\n".join([*_lines(public), _lines(public)[1]]) + "\n"
    ),
    "1e200 everywhere": lambda public, private, tmp: _write(
        tmp / "big.csv", _cells(public, "1e200")
    ),
    "1e154 everywhere": lambda public, private, tmp: _write(
        tmp / "sq.csv", _cells(public, "1e154")
    ),
    "binary garbage": lambda public, private, tmp: _write_bytes(tmp / "bin.csv", bytes(range(256))),
    "/etc/shadow": lambda public, private, tmp: "/etc/shadow",
    "/proc/self/environ": lambda public, private, tmp: "/proc/self/environ",
}


def floor(cwd: Path, python: str) -> Measurement:
    """`python -c pass` as the launcher runs it: the start-up floor no evaluator goes below."""
    return measure_command(cwd, [python, "-c", "pass"])


def run_hostile(public: Path, private: Path, repeat: int, python: str) -> list[dict[str, Any]]:
    """Each hostile input `repeat` times, each run beside a floor run (so load hits both
    alike); the median time, the largest peak RSS and every exit code count."""
    rows = []
    for name, plant in HOSTILE.items():
        with tempfile.TemporaryDirectory(prefix="sandforge-bench-hostile-") as scratch:
            path = plant(public, private, Path(scratch))
            runs, floors = [], []
            for _ in range(repeat):
                floors.append(floor(public, python).seconds)
                silent = name.startswith("/dev/stdin")
                runs.append(_measure_hostile(public, path, silent, python))
        seconds = statistics.median(r.seconds for r in runs)
        cpu = statistics.median(r.cpu_seconds for r in runs)
        rss_mb = max(r.max_rss_kb for r in runs) / 1024
        refused = all(r.returncode == 1 for r in runs)
        rows.append(
            {
                "input": name,
                "exit": sorted({r.returncode for r in runs}),
                "seconds": round(seconds, 4),
                "over_floor_ms": round((seconds - statistics.median(floors)) * 1000, 1),
                "cpu_ms": round(cpu * 1000, 1),
                "max_rss_mb": round(rss_mb, 1),
                "message": runs[0].stderr.strip().removeprefix("invalid submission: ")[:60],
                "met": refused and seconds <= HOSTILE_SECONDS and rss_mb <= HOSTILE_MB,
            }
        )
    for server in _OPEN:
        server.close()
    _OPEN.clear()
    return rows


def _measure_hostile(public: Path, path: str, silent_stdin: bool, python: str) -> Measurement:
    if not silent_stdin:
        return measure(public, path, python=python)
    read, write = os.pipe()  # a writer that never writes: reading would hang
    try:
        return measure(public, path, stdin=read, python=python)
    finally:
        os.close(read)
        os.close(write)


def run_normal(public: Path, runs: int, python: str) -> dict[str, Any]:
    """The sample submission `runs` times, alternating with `python -c pass` (the interpreter's
    start-up floor, which the evaluator cannot go below), so load hits both alike."""
    results, floors = [], []
    for _ in range(runs):
        results.append(measure(public, "sample_submission.csv", python=python))
        floors.append(floor(public, python))
    seconds = [r.seconds for r in results]
    median_ms = statistics.median(seconds) * 1000
    return {
        "runs": runs,
        "interpreter_floor_ms": round(statistics.median(f.seconds for f in floors) * 1000, 1),
        "cpu_median_ms": round(statistics.median(r.cpu_seconds for r in results) * 1000, 1),
        "floor_cpu_median_ms": round(statistics.median(f.cpu_seconds for f in floors) * 1000, 1),
        "valid": all(r.returncode == 0 for r in results),
        "median_ms": round(median_ms, 1),
        "max_ms": round(max(seconds) * 1000, 1),
        "max_rss_mb": round(max(r.max_rss_kb for r in results) / 1024, 1),
        "met": median_ms <= NORMAL_MS,
    }


def generate_bundle(store: Path) -> Path:
    """One task through `sandforge generate` (the offline provider), as a user would; signed
    with a throwaway key beside the store unless a key is configured."""
    from sandforge.storage.signing import KEY_ENV, KEY_FILE_ENV

    env = dict(os.environ)
    if not (env.get(KEY_ENV) or env.get(KEY_FILE_ENV)):
        env[KEY_FILE_ENV] = str(store.parent / "keys" / "signing.pem")
    command = ["generate", "--seeds", SEED, "--per-seed", "1", "--store", str(store), "--json"]
    run = subprocess.run(
        [sys.executable, "-m", "sandforge.cli", *command],
        capture_output=True,
        text=True,
        timeout=900,
        check=True,
        env=env,
    )
    return Path(json.loads(run.stdout)["tasks"][0]["path"])


def copy_task(bundle: Path, into: Path) -> tuple[Path, Path]:
    """public/ and private/ of the bundle copied (the hostile inputs plant files beside them)."""
    for part in ("public", "private"):
        shutil.copytree(bundle / "prepared" / part, into / "prepared" / part)
    return into / "prepared" / "public", into / "prepared" / "private"


def print_report(report: dict[str, Any]) -> None:
    out = Console()
    table = Table(
        title=f"evaluator.py of {report['bundle']} on hostile inputs ({report['python']})"
    )
    for column in ("input", "exit", "wall", "over floor", "CPU", "peak RSS", "target", "message"):
        table.add_column(column, overflow="fold")
    for row in report["hostile"]:
        verdict = "[green]met[/green]" if row["met"] else "[red]missed[/red]"
        table.add_row(
            row["input"],
            ",".join(map(str, row["exit"])),
            f"{row['seconds']:.3f} s",
            f"{row['over_floor_ms']:.0f} ms",
            f"{row['cpu_ms']:.0f} ms",
            f"{row['max_rss_mb']:.1f} MB",
            verdict,
            row["message"],
        )
    out.print(table)
    normal = report["normal"]
    verdict = "[green]met[/green]" if normal["met"] else "[red]missed[/red]"
    out.print(
        f"normal case (sample_submission.csv, {normal['runs']} runs): median "
        f"{normal['median_ms']} ms (target <= {NORMAL_MS:g} ms) {verdict}, max "
        f"{normal['max_ms']} ms, peak RSS {normal['max_rss_mb']} MB, valid: {normal['valid']}; "
        f"CPU median {normal['cpu_median_ms']} ms; interpreter floor (python -c pass) median "
        f"{normal['interpreter_floor_ms']} ms wall, {normal['floor_cpu_median_ms']} ms CPU"
    )
    out.print(
        f"hostile inputs within <= {HOSTILE_SECONDS} s and <= {HOSTILE_MB:g} MB, refused: "
        f"{sum(r['met'] for r in report['hostile'])}/{len(report['hostile'])}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", type=Path, help="a bundle folder; default: generate one")
    parser.add_argument("--runs", type=int, default=20, help="runs of the normal case")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each hostile input")
    parser.add_argument(
        "--python",
        default=sys.executable,
        help="interpreter that runs evaluator.py (the trainer's own; default: this one)",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.repeat < 1:
        Console(stderr=True).print("--runs and --repeat must be at least 1")
        return EXIT_BAD_INPUT
    python = shutil.which(args.python)
    if python is None:
        Console(stderr=True).print(f"--python {args.python}: no such interpreter")
        return EXIT_BAD_INPUT
    args.python = os.path.abspath(python)  # runs are started in the task's folder
    if args.bundle is not None and not (args.bundle / "prepared" / "public").is_dir():
        Console(stderr=True).print(f"{args.bundle}: not a bundle folder (no prepared/public)")
        return EXIT_BAD_INPUT
    with tempfile.TemporaryDirectory(prefix="sandforge-bench-evaluator-") as scratch:
        root = Path(scratch)
        try:
            bundle = args.bundle or generate_bundle(root / "store")
        except (subprocess.SubprocessError, KeyError, IndexError, ValueError) as exc:
            Console(stderr=True).print(f"could not generate a bundle: {exc}")
            return EXIT_FAILED
        public, private = copy_task(bundle, root / "task")
        report = {
            "bundle": bundle.parent.name,
            "python": args.python,
            "hostile": run_hostile(public, private, args.repeat, args.python),
            "normal": run_normal(public, args.runs, args.python),
            "targets": {
                "hostile_seconds": HOSTILE_SECONDS,
                "hostile_mb": HOSTILE_MB,
                "normal_median_ms": NORMAL_MS,
            },
        }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_report(report)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
