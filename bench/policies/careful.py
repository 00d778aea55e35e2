"""Policy 6, the careful agent: description-guided features, grouped CV model selection
among several families, metric-aware targets and post-processing (see _careful.py)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _careful import run

if __name__ == "__main__":
    run(ensemble=False)
