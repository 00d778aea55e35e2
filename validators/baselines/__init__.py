"""Reference solutions (trivial, simple, strong) that prove a generated task is learnable."""

from sandforge.validators.baselines.runner import (
    BASELINES,
    BaselineFailed,
    BaselineRun,
    run_baseline,
    run_ladder,
    write_task_json,
)

__all__ = [
    "BASELINES",
    "BaselineFailed",
    "BaselineRun",
    "run_baseline",
    "run_ladder",
    "write_task_json",
]
