"""How a verified bundle is laid out for each consumer (CONTRACTS.md) under an output folder:

native     <out>/<task_id>/<version>/...        the store's own layout (a local store)
sandmle    <out>/<task_id>/prepared/...         plus the ok-lists
mlebench   <out>/competitions/<id>/ + <out>/data/<id>/
mledojo    <out>/competitions/<id>/ + <out>/prepared/<id>/
"""

from __future__ import annotations

from typing import Any

from sandforge.storage.layouts.base import Layout
from sandforge.storage.layouts.mlebench import MLEBench
from sandforge.storage.layouts.mledojo import MLEDojo
from sandforge.storage.layouts.native import Native
from sandforge.storage.layouts.sandmle import SandMLE

LAYOUTS: dict[str, type[Layout]] = {
    "native": Native,
    "sandmle": SandMLE,
    "mlebench": MLEBench,
    "mledojo": MLEDojo,
}


def get_layout(name: str, **options: Any) -> Layout:
    if name not in LAYOUTS:
        raise ValueError(f"unknown layout {name!r}: choose one of {sorted(LAYOUTS)}")
    return LAYOUTS[name](**options)
