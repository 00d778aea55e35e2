"""Reference solutions (trivial, simple, strong) that prove a generated task is learnable."""

from sandforge.validators.baselines.runner import (
    BASELINE_SCRIPTS,
    BaselineFailed,
    BaselineRun,
    run_ladder,
    write_task_json,
)

__all__ = [
    "BASELINE_SCRIPTS",
    "BaselineFailed",
    "BaselineRun",
    "run_ladder",
    "write_task_json",
]
