"""The store's own layout: `<out>/<task_id>/<version>/` with manifest.json, i.e. a local store
that `sandforge inspect`, `export --store` and trainers read like any other."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sandforge.storage.bundle import MANIFEST, BundleError, canonical_json, verify_bundle
from sandforge.storage.layouts.base import Layout


class Native(Layout):
    name = "native"
    marker = False  # manifest.json is the marker: the bundle verifies against it
    root_patterns = ("{task_id}/{version}",)

    def render(self, manifest: dict[str, Any], files: dict[str, bytes]) -> dict[str, bytes]:
        root = self.roots(manifest)[0]
        return {
            **{f"{root}/{path}": data for path, data in files.items()},
            f"{root}/{MANIFEST}": canonical_json(manifest),
        }

    def is_complete(self, out: Path, manifest: dict[str, Any]) -> bool:
        try:
            local = verify_bundle(out / self.roots(manifest)[0])
        except BundleError:
            return False
        return local["content_hash"] == manifest["content_hash"]
