"""The bundle: one immutable folder per task version, described by manifest.json.

    manifest.json                 recipe (hidden rule), thresholds, scores, checks, file hashes
    prepared/public/              what an agent sees: description, evaluator, data, sample
    prepared/private/answer.csv   ground truth, read by evaluator.py from outside public/

The content hash covers everything but `version`, `created_at` and `signature`, so
regenerating a recipe reproduces it. Set SOURCE_DATE_EPOCH to make `created_at`, and so the
whole bundle, identical. The signature (storage/signing.py) covers the whole manifest.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

from sandforge.seeds.card import SLUG_PATTERN

import sandforge

FORMAT = "sandforge-bundle/1"
MANIFEST = "manifest.json"
PUBLIC_FILES = ("description.md", "evaluator.py", "sample_submission.csv", "train.csv", "test.csv")
UNHASHED_FIELDS = ("version", "created_at", "content_hash", "signature")


class BundleError(ValueError):
    """A bundle that is incomplete, corrupted or inconsistent with its manifest."""


def safe_task_id(task_id: str) -> str:
    """Task ids become folder and object names: ASCII slugs only, never a path."""
    if not re.fullmatch(SLUG_PATTERN, task_id) or ".." in task_id or len(task_id) > 100:
        raise BundleError(f"unsafe task id {task_id!r}: use letters, digits, '.', '_' and '-'")
    return task_id


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False).encode() + b"\n"


def created_at() -> str:
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    moment = dt.datetime.fromtimestamp(int(epoch), dt.UTC) if epoch else dt.datetime.now(dt.UTC)
    return moment.replace(microsecond=0).isoformat()


def content_hash(manifest: dict[str, Any]) -> str:
    return sha256(canonical_json({k: v for k, v in manifest.items() if k not in UNHASHED_FIELDS}))


def build_manifest(files: dict[str, bytes], **fields: Any) -> dict[str, Any]:
    """Manifest for `files` (bundle path -> bytes) without a version yet."""
    manifest = {
        "format": FORMAT,
        "sandforge_version": sandforge.__version__,
        **fields,
        "files": {p: {"sha256": sha256(b), "bytes": len(b)} for p, b in sorted(files.items())},
        "created_at": created_at(),
    }
    manifest["content_hash"] = content_hash(manifest)
    return manifest


def check_manifest(manifest: dict[str, Any]) -> None:
    """The manifest's own integrity: known format, fields matching its content hash."""
    if manifest.get("format") != FORMAT:
        raise BundleError(f"unknown bundle format {manifest.get('format')!r}")
    if content_hash(manifest) != manifest.get("content_hash"):
        raise BundleError("manifest.json was modified: its content hash does not match")


def verify_files(manifest: dict[str, Any], read: callable) -> None:  # type: ignore[valid-type]
    """Check every file listed in the manifest with `read(path) -> bytes`."""
    check_manifest(manifest)
    for path, entry in manifest["files"].items():
        try:
            data = read(path)
        except FileNotFoundError:
            raise BundleError(f"{path}: missing") from None
        if sha256(data) != entry["sha256"]:
            raise BundleError(f"{path}: sha256 mismatch (corrupted or tampered)")


def read_manifest(bundle: Path) -> dict[str, Any]:
    path = bundle / MANIFEST
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BundleError(f"{bundle}: not a bundle (no {MANIFEST})") from None
    except json.JSONDecodeError as exc:
        raise BundleError(f"{path}: not valid JSON: {exc}") from None


def verify_bundle(bundle: Path) -> dict[str, Any]:
    """Read and fully verify a bundle folder; returns its manifest.

    Files the manifest does not list are an error too: an answer.csv dropped into public/
    must not ride along into an export.
    """
    manifest = read_manifest(bundle)
    verify_files(manifest, lambda p: (bundle / p).read_bytes())
    present = {p.relative_to(bundle).as_posix() for p in bundle.rglob("*") if not p.is_dir()}
    unlisted = sorted(present - set(manifest["files"]) - {MANIFEST})
    if unlisted:
        raise BundleError(f"{bundle}: files not in the manifest: {unlisted}")
    return manifest
