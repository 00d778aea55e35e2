"""Prefect's side of reusing results: cache-key functions and the result serializer.

Keys are sandforge.cache_keys' (everything a result depends on, the factory's source
included); results are pickled by sandforge.pickling (providers by reference) and
zlib-compressed. They land in Prefect's result storage (`PREFECT_LOCAL_STORAGE_PATH`, default
`~/.prefect/storage`); workers that share batches must share that folder.
"""

from __future__ import annotations

from typing import Any

from prefect.context import TaskRunContext
from prefect.serializers import CompressedSerializer, PickleSerializer

from sandforge.cache_keys import build_key, cache_key


def dna_key(_: TaskRunContext, parameters: dict[str, Any]) -> str:
    """DNA depends on the card's content and who reads it, not on the batch."""
    return cache_key("dna", parameters["card"], parameters["provider"])


def build_candidate_key(_: TaskRunContext, parameters: dict[str, Any]) -> str:
    return build_key(parameters["candidate"])


# zlib: a build result is mostly CSV text (~250 KB pickled, ~5x smaller compressed)
RESULT_SERIALIZER = CompressedSerializer(
    serializer=PickleSerializer(picklelib="sandforge.pickling"), compressionlib="zlib"
)
