"""Craft checks: for each quirk of the task, the same solver without and with its craft.

Run as `python run.py` in a folder holding train.csv, test.csv and task.json (with its quirks).
"With" applies every quirk's craft, as a careful agent would; quirk i's "without" undoes
only its own craft. So the gain is what leaving that one craft out costs, measured on a
solver that does the rest right (one missing craft cannot hide behind another). For quirk i
it writes `craft_<i>_without.csv` and `craft_<i>_with.csv`; `crafts.json` records each one's
seconds or error. The factory scores both on the test answers. One process, so scikit-learn
is imported once.
"""

import json
import sys
import time
import traceback
from pathlib import Path

# This folder (the base solver) and its parent (the ladder's task, tables and crafts).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Task, load_task
from _crafts import solve
from crafted import compose, load_frames, variants


def _kinds(features: dict[str, str]) -> dict[str, str]:
    """Booleans and integers are numbers to the base solver."""
    return {n: "categorical" if k == "categorical" else "numeric" for n, k in features.items()}


def check(task: Task, index: int, pairs: list[tuple[dict, dict]], train, test, ids) -> None:
    """Every craft but quirk `index`'s, then with it too."""
    base = _kinds(task.features)
    everything = compose(base, [crafted for _, crafted in pairs])
    others = [crafted for j, (_, crafted) in enumerate(pairs) if j != index]
    undone = compose(base, [*others, pairs[index][0]])
    quirk = task.quirks[index]["quirk"]
    weights = [q["quirk"] == "class_imbalance" for q in task.quirks]
    options = {"solver": "linear" if quirk == "heavy_tails" else "trees"}
    balanced = {"class_weight": "balanced"} if any(weights) else {}
    unweighted = {} if quirk == "class_imbalance" else balanced
    solve(task, train, test, ids, undone, f"craft_{index}_without.csv", **options, **unweighted)
    solve(task, train, test, ids, everything, f"craft_{index}_with.csv", **options, **balanced)


def main() -> int:
    task = load_task()
    train, test, ids = load_frames(task)
    base = _kinds(task.features)
    pairs = variants(task, train, test, base)  # crafts add their columns to the frames
    report = {}
    for index in range(len(task.quirks)):
        start = time.perf_counter()
        try:
            check(task, index, pairs, train, test, ids)
            report[str(index)] = {"seconds": time.perf_counter() - start}
        except Exception:
            report[str(index)] = {"error": traceback.format_exc(limit=5)}
    Path("crafts.json").write_text(json.dumps(report, indent=1) + "\n")
    return 0 if all("seconds" in entry for entry in report.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
