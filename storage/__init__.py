"""Bundle stores, the catalog, and pulling bundles for trainers.

    from sandforge.storage import Trust, open_store, query_catalog, select, pull
    store = open_store("s3://sandforge/bundles")         # or a local folder
    rows = query_catalog(store, "metric = 'rmse' AND is_latest")
    result = pull(store, select(store, where="task_type = 'binary'"), "data/", layout="sandmle")
    # only bundles signed by a trusted key: Trust.default() ($SANDFORGE_TRUSTED_KEYS and the
    # local key) unless pull(..., trust=Trust.default(["ed25519:..."], allow_unsigned=...))

Names are imported on first use, so `import storage.bundle` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_API = {
    "open_store": "sandforge.storage.backends",
    "Store": "sandforge.storage.store",
    "StoreError": "sandforge.storage.store",
    "BundleError": "sandforge.storage.bundle",
    "query_catalog": "sandforge.storage.catalog",
    "rebuild_catalog": "sandforge.storage.catalog",
    "select": "sandforge.storage.pulling",
    "pull": "sandforge.storage.pulling",
    "BundleRef": "sandforge.storage.pulling",
    "PullResult": "sandforge.storage.pulling",
    "PullError": "sandforge.storage.pulling",
    "SelectionError": "sandforge.storage.pulling",
    "Trust": "sandforge.storage.signing",
    "Signer": "sandforge.storage.signing",
    "SignatureError": "sandforge.storage.signing",
    "UnsignedBundleError": "sandforge.storage.signing",
    "SigningKeyError": "sandforge.storage.signing",
}
_RENAMED = {"query_catalog": "query", "rebuild_catalog": "rebuild"}
__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module 'storage' has no attribute {name!r}")
    value = getattr(importlib.import_module(_API[name]), _RENAMED.get(name, name))
    globals()[name] = value
    return value
