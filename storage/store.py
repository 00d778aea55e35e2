"""What every bundle store offers, wherever the bytes live.

A store holds `<task_id>/<version>/manifest.json` plus the files the manifest lists, under a
root that is a local folder (LocalStore) or a bucket and prefix (S3Store). A version is
visible only once its manifest.json exists, and a version never changes once visible.

    store = open_store("bundles/")   # storage/backends.py; or "file:///abs/path", "s3://bucket/x"
    version, created = store.publish(manifest, files)
    for task_id, version in store.latest_versions():
        manifest = store.read_manifest(task_id, version)
        data = store.read_file(task_id, version, "prepared/public/train.csv")

Beside the bundles, a store keeps a few objects of its own under names whose first segment
starts with "_" (`_catalog/...`, `_reports/...`); task ids start with a letter or digit, so the
two never collide. Objects carry a tag that changes whenever they do, for compare-and-swap.

Publishing signs each stored manifest (storage/signing.py); pulls check that signature.
"""

from __future__ import annotations

import posixpath
from typing import Any, Protocol, runtime_checkable

from sandforge.storage.bundle import MANIFEST, BundleError
from sandforge.storage.signing import Signer


class StoreError(BundleError):
    """The store itself failed: unreachable, wrong credentials, missing bucket, ..."""


@runtime_checkable
class Store(Protocol):
    """A versioned, append-only home for bundles; LocalStore and S3Store implement it."""

    @property
    def url(self) -> str:
        """Where the store lives, in a form `open_store` accepts."""
        ...

    def __str__(self) -> str: ...

    def publish(
        self, manifest: dict[str, Any], files: dict[str, bytes], *, signer: Signer | None = None
    ) -> tuple[int, bool]:
        """Store a bundle as the next version: (version, created). The stored manifest, with
        its version, is signed by `signer` (default: signing.default_signer()).

        Content already stored (same content hash) returns (its version, False).
        """
        ...

    def versions(self, task_id: str) -> list[int]:
        """Complete (manifest-bearing) versions of a task, ascending; [] for unknown tasks."""
        ...

    def read_manifest(self, task_id: str, version: int) -> dict[str, Any]:
        """The stored manifest; BundleError when that version does not exist."""
        ...

    def read_file(self, task_id: str, version: int, path: str) -> bytes:
        """One file of a bundle by its bundle path; FileNotFoundError when missing."""
        ...

    def latest_versions(self) -> list[tuple[str, int]]:
        """(task_id, newest version) of every task, sorted by task id."""
        ...

    def location(self, task_id: str, version: int) -> str:
        """Human-readable address of one bundle (a folder path or an s3:// URL)."""
        ...

    def list_bundles(self) -> list[tuple[str, int]]:
        """Every complete (task_id, version), sorted."""
        ...

    def get_object(self, name: str) -> tuple[bytes, str] | None:
        """A store object (see the module docstring): (data, tag), or None if absent."""
        ...

    def put_object(
        self, name: str, data: bytes, *, if_match: str | None = None, create_only: bool = False
    ) -> bool:
        """Write a store object; False when the condition fails: with `create_only` it already
        exists, with `if_match` its tag is no longer that one."""
        ...

    def object_url(self, name: str) -> str:
        """Where a store object opens from outside (file:// or s3://); S3 serves it with the
        content type its extension names (`_reports/x.html` as text/html)."""
        ...

    def list_objects(self, folder: str) -> dict[str, str]:
        """{name: tag} of every store object under `folder`."""
        ...

    def delete_object(self, name: str) -> None:
        """Remove a store object; absent is fine."""
        ...


def safe_bundle_path(path: str) -> str:
    """A file path inside a bundle: relative, '/'-separated, never escaping the bundle."""
    if (
        not path
        or path.startswith("/")
        or "\\" in path
        or posixpath.normpath(path) != path
        or path.split("/")[0] in (".", "..")
        or path == MANIFEST
    ):
        raise BundleError(f"unsafe bundle file path {path!r}")
    return path


def safe_object_name(name: str) -> str:
    """A store object's name: a safe relative path whose first segment starts with '_'."""
    safe_bundle_path(name)
    if not name.startswith("_") or "/" not in name:
        raise BundleError(f"store object name {name!r} must look like '_folder/name'")
    return name
