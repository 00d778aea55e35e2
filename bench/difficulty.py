"""Tier rates of a generated store, for comparing `--difficulty` settings.

    .venv/bin/sandforge generate --per-seed 2 --difficulty hard --store S --json > S.json
    .venv/bin/python -m bench.difficulty S [S.json]

Per accepted task, in the metric's better direction: where the simple and strong baselines
land between the trivial baseline (0) and the oracle (1), and which tier each reaches. With
the summary JSON it also prints the acceptance yield.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

from sandforge.tiers import TIERS


def _tier(score: float, thresholds: dict[str, float], lower: bool) -> str:
    reached = "none"
    for tier in TIERS:
        t = thresholds[tier]
        if (score <= t) if lower else (score >= t):
            reached = tier
    return reached


def summarize(store: Path) -> dict[str, object]:
    rows = []
    for path in sorted(store.glob("*/*/manifest.json")):
        m = json.loads(path.read_text())
        s, lower = m["baseline_scores"], m["is_lower_better"]
        span = s["oracle"] - s["trivial"]
        rows.append(
            {
                "difficulty": m.get("difficulty", "medium"),
                "simple": (s["simple"] - s["trivial"]) / span,
                "strong": (s["strong"] - s["trivial"]) / span,
                "simple_tier": _tier(s["simple"], m["thresholds"], lower),
                "strong_tier": _tier(s["strong"], m["thresholds"], lower),
            }
        )
    n = len(rows)
    share = {
        f"{who}_reaches_{tier}": round(sum(r[f"{who}_tier"] == tier for r in rows) / n, 3)
        for who in ("simple", "strong")
        for tier in ("median", "bronze")
    }
    return {
        "tasks": n,
        "difficulty": sorted({r["difficulty"] for r in rows}),
        "median_simple_of_oracle_gain": round(statistics.median(r["simple"] for r in rows), 3),
        "median_strong_of_oracle_gain": round(statistics.median(r["strong"] for r in rows), 3),
        "simple_over_strong": round(
            statistics.median(r["simple"] / r["strong"] for r in rows if r["strong"] > 0), 3
        ),
        **share,
    }


def main(argv: list[str]) -> int:
    result = summarize(Path(argv[0]))
    if len(argv) > 1:
        summary = json.loads(Path(argv[1]).read_text())
        result["accepted"], result["rejected"] = summary["accepted"], summary["rejected"]
        result["acceptance_rate"] = summary["acceptance_rate"]
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
