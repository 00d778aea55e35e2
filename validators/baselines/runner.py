"""Run a baseline script as untrusted code in the sandbox, as a task's solver would be run.

The scripts are standalone programs (see _common.py); they read task.json, which
`write_task_json` derives from the recipe, so they never import sandforge. They run in a copy
of the workdir; only their submissions and ladder.json come back, as regular files read
without following links, and this process writes them into the workdir.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sandforge.agents.recipe import CRAFT_NAMES
from sandforge.validators.sandbox import PYTHON, SandboxResult, run_sandboxed

if TYPE_CHECKING:
    from sandforge.agents.recipe import Recipe

BASELINE_SCRIPTS = ("trivial", "simple", "strong", "pool")  # the solvers here, weakest first
SCRIPTS_DIR = Path(__file__).resolve().parent
STDERR_TAIL_CHARS = 2_000


class BaselineFailed(RuntimeError):
    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"baseline {name!r} failed: {reason}")
        self.name = name
        self.reason = reason


@dataclass(frozen=True)
class BaselineRun:
    name: str
    submission: Path
    seconds: float
    backend: str


def run_ladder(
    workdir: Path, names: tuple[str, ...] = BASELINE_SCRIPTS, timeout_s: float = 120
) -> dict[str, BaselineRun]:
    """Run the `names` baselines (default: all) in one sandboxed process, so that
    scikit-learn is imported once. One name runs that baseline as a solver is run: alone,
    in a fresh process.

    Each run's `seconds` is its own fit and predict inside that process; the first
    baseline that needs scikit-learn also carries the import.
    """
    unknown = sorted(set(names) - set(BASELINE_SCRIPTS))
    if unknown or not names:
        raise ValueError(f"unknown baselines {unknown} (known: {', '.join(BASELINE_SCRIPTS)})")
    for name in BASELINE_SCRIPTS:  # stale files must not pass for this run's output
        (workdir / f"submission_{name}.csv").unlink(missing_ok=True)
    (workdir / "ladder.json").unlink(missing_ok=True)
    submissions = tuple(f"submission_{name}.csv" for name in names)
    result, report = run_reporting_script(["ladder.py", *names], workdir, timeout_s, submissions)
    runs = {}
    for name in names:
        entry = report.get(name, {})
        output = f"submission_{name}.csv"
        if "error" in entry or output not in result.outputs:
            reason = str(entry.get("error", "wrote no submission")) + _refusals(result)
            raise BaselineFailed(name, reason)
        submission = workdir / output
        submission.write_bytes(result.outputs[output])
        runs[name] = BaselineRun(name, submission, float(entry["seconds"]), result.backend)
    return runs


def run_reporting_script(
    args: list[str], workdir: Path, timeout_s: float, outputs: tuple[str, ...]
) -> tuple[SandboxResult, dict]:
    """Run `SCRIPTS_DIR/args[0]` (the ladder, the craft checks) with the rest as arguments;
    it writes `<name>.json`, one entry per run, beside `outputs`. (result, that report)."""
    name = Path(args[0]).parent.name or Path(args[0]).stem  # "ladder", "crafts"
    report_file = f"{name}.json"
    result = run_sandboxed(
        [PYTHON, str(SCRIPTS_DIR / args[0]), *args[1:]],
        workdir=workdir,
        timeout_s=timeout_s,
        readonly_dirs=(SCRIPTS_DIR,),
        outputs=(report_file, *outputs),
    )
    tail = result.stderr[-STDERR_TAIL_CHARS:]
    if result.timed_out:
        raise BaselineFailed(name, f"timed out after {timeout_s:g} s\n{tail}")
    try:
        report = json.loads(result.outputs[report_file])
    except (KeyError, ValueError):
        raise BaselineFailed(
            name, f"no readable {report_file}{_refusals(result)}\n{tail}"
        ) from None
    return result, report


def _refusals(result: SandboxResult) -> str:
    """Why outputs the script left were not read back (a link, a FIFO, too large...)."""
    return "".join(f"; {name} refused: {why}" for name, why in result.refused_outputs.items())


def write_task_json(workdir: Path, recipe: Recipe) -> None:
    """The part of the recipe a solver may know: columns, kinds, labels, the metric, each seed
    quirk's columns and craft (all public in the description). No rule, no noise."""
    spec = {
        "id_column": recipe.id_column,
        "target_columns": [t.name for t in recipe.targets],
        "submission_columns": recipe.submission_columns(),
        "submission_kind": recipe.submission_kind.value,
        "classes": {
            t.name: recipe.class_labels(t) for t in recipe.targets if t.kind != "continuous"
        },
        "features": {f.name: f.kind for f in recipe.features} | recipe.quirk_feature_kinds(),
        "nonnegative_targets": [t.name for t in recipe.targets if t.nonnegative],
        "metric": recipe.metric,
        "quirks": [
            {
                "quirk": q.quirk,
                "craft": CRAFT_NAMES[q.quirk],
                "columns": {c.name: c.kind for c in q.columns},
            }
            for q in recipe.quirks
        ],
    }
    (workdir / "task.json").write_text(json.dumps(spec, indent=2) + "\n")
