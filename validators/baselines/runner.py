"""Run a baseline script as untrusted code in the sandbox, as a task's solver would be run.

The scripts are standalone programs (see _common.py); they read task.json, which
`write_task_json` derives from the recipe, so they never import sandforge.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sandforge.validators.sandbox import PYTHON, SandboxResult, run_sandboxed

if TYPE_CHECKING:
    from sandforge.synthesis.recipe import Recipe

BASELINES = ("trivial", "simple", "strong")
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


def run_baseline(name: str, workdir: Path, timeout_s: float = 60) -> BaselineRun:
    """Run one baseline as its own fresh sandboxed process; its submission.csv is the result."""
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r} (known: {', '.join(BASELINES)})")
    submission = workdir / "submission.csv"
    submission.unlink(missing_ok=True)  # a stale file must not pass for this run's output
    result = _run_script(f"{name}.py", name, workdir, timeout_s)
    if not submission.is_file():
        raise BaselineFailed(name, f"wrote no submission.csv\n{result.stderr}")
    return BaselineRun(name, submission, result.seconds, result.backend)


def run_ladder(workdir: Path, timeout_s: float = 120) -> dict[str, BaselineRun]:
    """Run every baseline in one sandboxed process (scikit-learn imported once).

    Each run's `seconds` is its own fit and predict inside that process; the first
    baseline that needs scikit-learn also carries the import.
    """
    for name in BASELINES:
        (workdir / f"submission_{name}.csv").unlink(missing_ok=True)
    (workdir / "ladder.json").unlink(missing_ok=True)
    result = _run_script("ladder.py", "ladder", workdir, timeout_s, check=False)
    try:
        report = json.loads((workdir / "ladder.json").read_text())
    except (OSError, ValueError):
        raise BaselineFailed("ladder", f"no readable ladder.json\n{result.stderr}") from None
    runs = {}
    for name in BASELINES:
        entry = report.get(name, {})
        submission = workdir / f"submission_{name}.csv"
        if "error" in entry or not submission.is_file():
            raise BaselineFailed(name, str(entry.get("error", "wrote no submission")))
        runs[name] = BaselineRun(name, submission, float(entry["seconds"]), result.backend)
    return runs


def _run_script(
    script: str, label: str, workdir: Path, timeout_s: float, check: bool = True
) -> SandboxResult:
    result = run_sandboxed(
        [PYTHON, str(SCRIPTS_DIR / script)],
        workdir=workdir,
        timeout_s=timeout_s,
        readonly_dirs=(SCRIPTS_DIR,),
    )
    stderr = result.stderr[-STDERR_TAIL_CHARS:]
    if result.timed_out:
        raise BaselineFailed(label, f"timed out after {timeout_s:g} s\n{stderr}")
    if check and result.returncode != 0:
        raise BaselineFailed(label, f"exit code {result.returncode}\n{stderr}")
    return result


def write_task_json(workdir: Path, recipe: Recipe) -> None:
    """The part of the recipe a solver may know: columns, kinds, labels. No rule, no noise."""
    spec = {
        "id_column": recipe.id_column,
        "target_columns": [t.name for t in recipe.targets],
        "submission_columns": recipe.submission_columns(),
        "submission_kind": recipe.submission_kind.value,
        "classes": {
            t.name: recipe.class_labels(t) for t in recipe.targets if t.kind != "continuous"
        },
        "features": {f.name: f.kind for f in recipe.features},
        "nonnegative_targets": [t.name for t in recipe.targets if t.nonnegative],
    }
    (workdir / "task.json").write_text(json.dumps(spec, indent=2) + "\n")
