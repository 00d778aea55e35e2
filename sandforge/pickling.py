"""Pickling build results with every `Provider` replaced by a (name, model) reference.

Role objects (an LLM client, say) need not be picklable: a provider is rebuilt with
`get_provider` on load. A module with `dumps`/`loads`, so a result serializer can name it as
its pickle library.
"""

from __future__ import annotations

import io
import pickle
from typing import Any

from sandforge.agents.roles import Provider


class _Pickler(pickle.Pickler):
    def persistent_id(self, obj: Any) -> tuple[str, str, str] | None:
        if isinstance(obj, Provider):
            return ("provider", obj.name, obj.model)
        return None


class _Unpickler(pickle.Unpickler):
    def persistent_load(self, pid: Any) -> Provider:
        from sandforge.agents.providers import get_provider

        _, name, model = pid
        return get_provider(name, model)


def dumps(obj: Any) -> bytes:
    buffer = io.BytesIO()
    _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
    return buffer.getvalue()


def loads(blob: bytes) -> Any:
    return _Unpickler(io.BytesIO(blob)).load()
