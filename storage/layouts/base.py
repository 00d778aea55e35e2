"""The base of every layout: rendering into owned folders, installing, and skipping.

A layout renders one bundle into files under a few folders it owns (its roots), e.g. MLE-bench's
`competitions/<id>` and `data/<id>`. `install` writes them into a hidden staging folder and
renames each root into place, then a marker in the last root records the content hash and the
sha256 of every rendered file. A root without a valid marker is incomplete and is rendered
again; a complete one is skipped when the bundle did not change. Staging folders carry their
process id, so the next pull removes those a killed one left behind.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from sandforge.storage.bundle import canonical_json, sha256
from sandforge.storage.files import file_sha256

from sandforge.bundle_files import PRIVATE, PUBLIC

MARKER = ".sandforge.json"
STAGING_PREFIX = ".sandforge-staging-"
TEMPLATES = Path(__file__).parent / "templates"


class Layout:
    """Base of every layout; subclasses define `name`, `root_patterns` and `render`."""

    name = ""
    marker = True  # write MARKER into the last root; a layout without it overrides is_complete
    root_patterns: tuple[str, ...] = ()  # e.g. "competitions/{task_id}", manifest fields

    def roots(self, manifest: dict[str, Any]) -> list[str]:
        """Folders (relative to the output) this bundle owns, in install order."""
        return [pattern.format_map(manifest) for pattern in self.root_patterns]

    def render(self, manifest: dict[str, Any], files: dict[str, bytes]) -> dict[str, bytes]:
        """Every file to write, by path relative to the output folder."""
        raise NotImplementedError

    def finish(self, out: Path, manifests: list[dict[str, Any]]) -> None:
        """After all bundles are in place: indexes over them (e.g. SandMLE's ok-lists)."""

    def is_complete(self, out: Path, manifest: dict[str, Any]) -> bool:
        """This version is fully rendered and unchanged since."""
        try:
            record = json.loads((out / self.roots(manifest)[-1] / MARKER).read_text())
        except (OSError, ValueError):
            return False
        if record.get("content_hash") != manifest["content_hash"]:
            return False
        return all(file_sha256(out / path) == digest for path, digest in record["files"].items())

    def install(self, out: Path, manifest: dict[str, Any], files: dict[str, bytes]) -> None:
        """Render into a staging folder, then swap each root into place; marker last."""
        rendered = self.render(manifest, files)
        roots = self.roots(manifest)
        strays = [p for p in rendered if not any(p.startswith(f"{root}/") for root in roots)]
        if strays:
            raise ValueError(f"{self.name} layout renders files outside its roots: {strays}")
        out.mkdir(parents=True, exist_ok=True)
        staging = staging_folder(out)
        try:
            for folder in sorted({(staging / path).parent for path in rendered}):
                folder.mkdir(parents=True, exist_ok=True)
            for path, data in rendered.items():
                (staging / path).write_bytes(data)
            if self.marker:
                marker = staging / roots[-1] / MARKER
                marker.write_bytes(self._marker(manifest, rendered))
            for root in roots:
                _swap(staging / root, out / root)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _marker(self, manifest: dict[str, Any], rendered: dict[str, bytes]) -> bytes:
        return canonical_json(
            {
                "layout": self.name,
                "task_id": manifest["task_id"],
                "version": manifest["version"],
                "content_hash": manifest["content_hash"],
                "files": {path: sha256(data) for path, data in sorted(rendered.items())},
            }
        )


def agent_split(
    files: dict[str, bytes], exclude: tuple[str, ...] = ()
) -> dict[str, dict[str, bytes]]:
    """{"public": {path: bytes}, "private": {...}} by path inside each folder."""
    split: dict[str, dict[str, bytes]] = {"public": {}, "private": {}}
    for folder, part in ((PUBLIC, "public"), (PRIVATE, "private")):
        for path, content in sorted(files.items()):
            inner = path.removeprefix(f"{folder}/")
            if inner != path and inner not in exclude:
                split[part][inner] = content
    return split


def template(name: str) -> bytes:
    return (TEMPLATES / name).read_bytes()


def sweep_abandoned(out: Path) -> list[Path]:
    """Remove the staging folders under `out` whose process is gone (a pull killed midway).

    Roots are at most two levels deep (`competitions/<id>`), so their staging folders are in
    `out` or one folder below it. Returns what was removed.
    """
    removed = []
    for folder in sorted([*out.glob(f"{STAGING_PREFIX}*"), *out.glob(f"*/{STAGING_PREFIX}*")]):
        owner = folder.name.removeprefix(STAGING_PREFIX).split("-", 1)[0]
        if owner.isdigit() and not _running(int(owner)):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def staging_folder(parent: Path) -> Path:
    """A new hidden folder under `parent`, named after this process for `sweep_abandoned`."""
    return Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-", dir=parent))


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _swap(staged: Path, target: Path) -> None:
    """Replace `target` by `staged`; the old copy is moved aside first, then removed."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        old = staging_folder(target.parent)
        os.rename(target, old / "old")
        shutil.rmtree(old)
    os.rename(staged, target)
