"""Where a bundle's files go and how a table becomes their bytes.

Core, not storage: synthesis writes the data files into `Candidate.files`, validators run
baselines on them and storage packages them, so all three name the same two folders.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import polars as pl

PUBLIC = "prepared/public"  # what an agent sees
PRIVATE = "prepared/private"  # the answers, read by evaluator.py from outside public/


def csv_bytes(frame: pl.DataFrame) -> bytes:
    return frame.write_csv().encode()
