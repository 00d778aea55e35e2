"""Policy 7, a small time-boxed ensemble: the careful agent, blending its three best
cross-validated models when the blend validates better (60 s model-search budget)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _careful import run

if __name__ == "__main__":
    run(ensemble=True, budget_s=60.0)
