"""Exports: every task's newest version, pulled (storage.pull) in a consumer's layout."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sandforge.storage.layouts import Layout, get_layout
from sandforge.storage.layouts.sandmle import SAMPLE as SANDMLE_SAMPLE
from sandforge.storage.pulling import WORKERS, Progress, PullResult, pull, select
from sandforge.storage.store import Store

__all__ = ["SANDMLE_SAMPLE", "export", "export_sandmle"]


def export(
    store: Store,
    out: str | Path,
    layout: str | Layout = "sandmle",
    *,
    workers: int = WORKERS,
    progress: Progress | None = None,
    **options: Any,
) -> PullResult:
    """Every task's newest version into `out`; options go to the layout (e.g. sample_seed)."""
    shape = get_layout(layout, **options) if isinstance(layout, str) else layout
    return pull(store, select(store), out, layout=shape, workers=workers, progress=progress)


def export_sandmle(store: Store, out: str | Path, sample_seed: int = 0) -> list[str]:
    """SandMLE trainer layout plus ok-lists; returns the exported task ids."""
    return export(store, out, "sandmle", sample_seed=sample_seed).task_ids
