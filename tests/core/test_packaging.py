"""The install puts exactly one import namespace, `sandforge`, into site-packages.

The stage folders (agents/, flows/, seeds/, storage/, synthesis/, validators/) sit at the
repository root but install as `sandforge.*` subpackages, so a trainer's environment that
already has PyPI's `validators` (or `storage`, `agents`, ...) keeps both.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
SETUPTOOLS = PYPROJECT["tool"]["setuptools"]


def _folder(package: str) -> Path:
    """Where setuptools takes `package` from, by the longest package-dir prefix."""
    mapping = SETUPTOOLS["package-dir"]
    parts = package.split(".")
    for cut in range(len(parts), 0, -1):
        prefix = ".".join(parts[:cut])
        if prefix in mapping:
            return REPO / mapping[prefix] / Path(*parts[cut:])
    raise AssertionError(f"{package}: no package-dir entry")


def test_every_package_folder_is_installed_under_sandforge() -> None:
    """The explicit list in pyproject names every folder with an __init__.py, and only those."""
    listed = set(SETUPTOOLS["packages"])
    for package in listed:
        assert (_folder(package) / "__init__.py").is_file(), package
    on_disk = {
        ".".join([package, *init.parent.relative_to(REPO / folder).parts])
        for package, folder in SETUPTOOLS["package-dir"].items()
        for init in (REPO / folder).rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    assert on_disk == listed


def _run(*command: str | Path, cwd: Path) -> str:
    done = subprocess.run(
        [str(c) for c in command], cwd=cwd, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, f"{command}: {done.stdout[-2000:]}{done.stderr[-2000:]}"
    return done.stdout


@pytest.mark.slow
def test_wheel_installs_beside_pypi_validators(tmp_path: Path) -> None:
    """Build the wheel, install it into a fresh venv that has PyPI's `validators`."""
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    _run(*pip, "wheel", "--no-deps", "-w", tmp_path / "dist", REPO, cwd=tmp_path)
    (wheel,) = (tmp_path / "dist").glob("sandforge-*.whl")
    venv.create(tmp_path / "venv", with_pip=True)
    python = tmp_path / "venv" / "bin" / "python"
    vpip = [python, "-m", "pip", "--disable-pip-version-check", "-q"]
    _run(*vpip, "install", "validators", cwd=tmp_path)
    _run(*vpip, "install", "--no-deps", wheel, cwd=tmp_path)

    probe = (
        "import importlib.util, validators, sandforge\n"
        "assert validators.email('someone@example.com') is True\n"  # PyPI's, not ours
        "for sub in ('agents', 'flows', 'seeds', 'storage', 'synthesis', 'validators'):\n"
        "    spec = importlib.util.find_spec('sandforge.' + sub)\n"
        "    assert spec and spec.origin.endswith('sandforge/' + sub + '/__init__.py'), sub\n"
        "print(validators.__file__)\n"
    )
    where = _run(python, "-c", probe, cwd=tmp_path)
    assert "sandforge" not in where

    shown = _run(python, "-m", "pip", "show", "-f", "sandforge", cwd=tmp_path)  # -q hides it
    files = shown.split("Files:", 1)[1].split()
    top = {f.split("/")[0] for f in files if not f.startswith("..")}
    assert top == {"sandforge", wheel.name.split("-py3")[0] + ".dist-info"}, top
