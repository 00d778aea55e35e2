"""Which store a URL names: the one module that knows every backend.

The backends import the Store contract (storage.store), never this module, so the contract
and its implementations do not import each other. Each backend is imported on first use:
a local store never loads boto3.
"""

from __future__ import annotations

from pathlib import Path

from sandforge.storage.bundle import BundleError
from sandforge.storage.store import Store


def open_store(url: str | Path) -> Store:
    """A local path or file:// URL -> LocalStore; s3://BUCKET[/PREFIX] -> S3Store."""
    text = str(url)
    if text.startswith("s3://"):
        from sandforge.storage.s3 import S3Store

        return S3Store.from_url(text)
    if "://" in text and not text.startswith("file://"):
        raise BundleError(
            f"unsupported store {text!r}: use a local path, file:///path or s3://bucket[/prefix]"
        )
    from sandforge.storage.local import LocalStore

    return LocalStore(Path(text.removeprefix("file://")))
