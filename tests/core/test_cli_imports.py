"""Commands that read bundles never import Prefect (it takes seconds to import): each runs
for real, on a small real bundle, in a fresh interpreter that reports what it imported."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from bundle_factory import make_task
from sandforge.storage.backends import open_store
from sandforge.storage.catalog import publish_and_catalog
from serial_batch import run_batch

RUN_AND_REPORT = """
import sys
from sandforge.cli import main
code = main(sys.argv[1:])
print("prefect modules:", sorted(m for m in sys.modules if m.split(".")[0] == "prefect"))
sys.exit(code)
"""


def sandforge(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", RUN_AND_REPORT, *args],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"sandforge {args} exited {done.returncode}:\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("store")
    publish_and_catalog(open_store(root), *make_task("alpha"))
    return root


def test_reading_commands_import_no_prefect(store: Path, tmp_path: Path) -> None:
    bundle = store / "alpha" / "1"
    submission = bundle / "prepared" / "public" / "sample_submission.csv"
    for args in (
        ["inspect", str(bundle)],
        ["grade", str(bundle), str(submission), "--json"],
        ["catalog", "--store", str(store), "--json"],
        ["pull", "--store", str(store), "--id", "alpha", "--out", str(tmp_path / "out")],
    ):
        assert sandforge(*args).splitlines()[-1] == "prefect modules: []", args
    assert (tmp_path / "out" / "alpha").is_dir()


@pytest.mark.slow
def test_regenerate_imports_no_prefect(tmp_path: Path) -> None:
    """A bundle of the real pipeline (built serially, without Prefect), rebuilt identically."""
    (tmp_path / "work").mkdir()
    summary = run_batch(str(tmp_path / "store"), "spaceship-titanic", 1, 7, tmp_path / "work")
    (task,) = summary["tasks"]
    out = sandforge("regenerate", task["path"]).splitlines()  # exit 0: identical
    assert out[-1] == "prefect modules: []"
