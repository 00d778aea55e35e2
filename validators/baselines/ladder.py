"""Run the whole baseline ladder in one process: trivial, simple, strong, pool, in that order.

Run as `python ladder.py [NAME ...]` in a folder holding train.csv, test.csv and task.json
(no names: all four). Each baseline writes `submission_<name>.csv`; `ladder.json` records
each one's seconds or error.
One process imports scikit-learn once instead of once per baseline, which is most of a
fresh baseline's cost on 50-200 rows.
"""

import importlib
import json
import os
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

LADDER = ("trivial", "simple", "strong", "pool")


def main(names: list[str]) -> int:
    report: dict[str, dict[str, object]] = {}
    for name in names or LADDER:
        start = time.perf_counter()
        try:
            importlib.import_module(name).main()
            os.replace("submission.csv", f"submission_{name}.csv")
            report[name] = {"seconds": time.perf_counter() - start}
        except Exception:
            report[name] = {"error": traceback.format_exc(limit=5)}
    Path("ladder.json").write_text(json.dumps(report, indent=1) + "\n")
    return 0 if all("seconds" in entry for entry in report.values()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
