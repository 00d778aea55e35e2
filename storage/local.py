"""Local bundle store: `<root>/<task_id>/<version>/`, published atomically by rename.

Publishers of a task hold an exclusive lock on its folder `<root>/<task_id>/` while they pick
a version. Store objects (`<root>/_catalog/...`) are written to a temporary file and renamed
into place; conditional writes hold an exclusive lock on `<root>/.objects.lock` while they
compare tags.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sandforge.storage.bundle import MANIFEST, canonical_json, read_manifest, safe_task_id
from sandforge.storage.files import write_atomically
from sandforge.storage.signing import Signer, default_signer
from sandforge.storage.store import safe_bundle_path, safe_object_name


class LocalStore:
    def __init__(self, root: Path):
        self.root = Path(root)

    def __str__(self) -> str:
        return str(self.root)

    @property
    def url(self) -> str:
        return str(self.root)

    def versions(self, task_id: str) -> list[int]:
        folder = self.root / task_id
        if not folder.is_dir():
            return []
        return sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit())

    def bundle_path(self, task_id: str, version: int) -> Path:
        return self.root / task_id / str(version)

    def location(self, task_id: str, version: int) -> str:
        return str(self.bundle_path(task_id, version))

    def publish(
        self, manifest: dict[str, Any], files: dict[str, bytes], *, signer: Signer | None = None
    ) -> tuple[int, bool]:
        """Publish a bundle, signed; returns (version, created). Same content again is a
        no-op.

        Publishers of one task take turns on an exclusive lock of the task's folder, so two
        processes with the same content store it once, and two with different content get
        distinct versions."""
        task_id = safe_task_id(manifest["task_id"])
        signer = signer or default_signer()  # a missing key fails before anything is written
        with _locked_folder(self.root / task_id):
            for version in self.versions(task_id):
                stored = read_manifest(self.bundle_path(task_id, version))
                if stored["content_hash"] == manifest["content_hash"]:
                    return version, False
            version = (self.versions(task_id) or [0])[-1] + 1
            final = self.bundle_path(task_id, version)
            staging = Path(tempfile.mkdtemp(prefix=f".{task_id}.", dir=final.parent))
            try:
                for path, data in files.items():
                    target = staging / path
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(data)
                signed = signer.sign({**manifest, "version": version})
                (staging / MANIFEST).write_bytes(canonical_json(signed))
                os.rename(staging, final)  # readers see all of it or nothing
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
        return version, True

    def read_manifest(self, task_id: str, version: int) -> dict[str, Any]:
        return read_manifest(self.bundle_path(safe_task_id(task_id), version))

    def read_file(self, task_id: str, version: int, path: str) -> bytes:
        bundle_dir = self.bundle_path(safe_task_id(task_id), version)
        return (bundle_dir / safe_bundle_path(path)).read_bytes()

    def latest(self) -> list[Path]:
        """The newest version of every task, sorted by task id."""
        if not self.root.is_dir():
            return []
        paths = []
        for folder in sorted(p for p in self.root.iterdir() if p.is_dir()):
            versions = self.versions(folder.name)
            if versions:
                paths.append(self.bundle_path(folder.name, versions[-1]))
        return paths

    def latest_versions(self) -> list[tuple[str, int]]:
        return [(p.parent.name, int(p.name)) for p in self.latest()]

    def list_bundles(self) -> list[tuple[str, int]]:
        if not self.root.is_dir():
            return []
        tasks = sorted(p.name for p in self.root.iterdir() if p.is_dir())
        return [(task, version) for task in tasks for version in self.versions(task)]

    # -- store objects ---------------------------------------------------------------------

    def get_object(self, name: str) -> tuple[bytes, str] | None:
        try:
            with open(self.root / safe_object_name(name), "rb") as handle:
                return handle.read(), _tag(os.fstat(handle.fileno()))
        except FileNotFoundError:
            return None

    def put_object(
        self, name: str, data: bytes, *, if_match: str | None = None, create_only: bool = False
    ) -> bool:
        path = self.root / safe_object_name(name)
        with self._objects_lock():
            current = _tag(path.stat()) if path.exists() else None
            if (create_only and current is not None) or (
                if_match is not None and current != if_match
            ):
                return False
            write_atomically(path, data)
        return True

    def object_url(self, name: str) -> str:
        return (self.root / safe_object_name(name)).resolve().as_uri()

    def list_objects(self, folder: str) -> dict[str, str]:
        folder = folder.strip("/")
        safe_object_name(f"{folder}/-")  # a folder follows the rules of the names it holds
        base = self.root / folder
        if not base.is_dir():
            return {}
        return {
            path.relative_to(self.root).as_posix(): _tag(path.stat())
            for path in sorted(base.rglob("*"))
            if path.is_file() and not path.name.startswith(".")
        }

    def delete_object(self, name: str) -> None:
        (self.root / safe_object_name(name)).unlink(missing_ok=True)

    @contextlib.contextmanager
    def _objects_lock(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".objects.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield


@contextlib.contextmanager
def _locked_folder(folder: Path) -> Iterator[None]:
    """An exclusive flock on the folder itself (created if missing) for the block: no lock
    file to leave behind, and the OS releases it when its holder dies."""
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _tag(stat: os.stat_result) -> str:
    """Changes with every write: each write renames a new file (new inode) into place."""
    return f"{stat.st_ino}-{stat.st_mtime_ns}-{stat.st_size}"
