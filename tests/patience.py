"""How long tests against live servers (Prefect, SeaweedFS, workers) may wait, on this
machine, now.

A timeout that holds on an idle laptop fails on a shared CI machine whose load average is 5:
every wait is scaled by how oversubscribed the cores are at the moment it starts. The
figures are bounds against hanging, never timing targets.
"""

from __future__ import annotations

import os

OVERRIDE = "SANDFORGE_TEST_SLOWDOWN"  # a fixed factor, e.g. for a known-slow machine


def slowdown() -> float:
    """1 on an idle machine, plus one for every runnable process per core (the larger of the
    1- and 5-minute load averages), so two busy loops on two cores double every wait."""
    if override := os.environ.get(OVERRIDE):
        return max(1.0, float(override))
    one, five, _ = os.getloadavg()
    return 1.0 + max(one, five) / (os.cpu_count() or 1)


def patience(seconds: float) -> float:
    """`seconds` on an idle machine, scaled by the current slowdown."""
    return seconds * slowdown()
