"""The medal tiers, the reference submissions they are set from, and a task's thresholds.

Core, the one place these are named: validators score the references and set the thresholds,
the candidate carries them, storage writes them into the manifest and catalog, reports and
the CLI show them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

TIERS = ("median", "bronze", "silver", "gold")  # weakest first
# Every task is scored on these: the three baseline scripts, the hidden rule's noise-free
# prediction and the uninformative sample submission (catalog column order).
REFERENCE_SUBMISSIONS = ("trivial", "simple", "strong", "oracle", "sample")


@dataclass(frozen=True)
class Thresholds:
    median: float
    bronze: float
    silver: float
    gold: float
    is_lower_better: bool

    def as_dict(self) -> dict[str, float]:
        return {k: v for k, v in asdict(self).items() if k != "is_lower_better"}
