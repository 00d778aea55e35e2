"""Pull bundles from any store into a local folder, verified, in one of the consumer layouts.

    from sandforge.storage import open_store, pull, select
    store = open_store("s3://sandforge/bundles")
    result = pull(store, select(store, where="metric = 'rmse'"), "data/", layout="sandmle")

1. every selected manifest is fetched (in parallel) and checked: format, content hash, that
   it is the bundle asked for, and its signature against the trusted keys (`trust`, default
   signing.Trust.default(): $SANDFORGE_TRUSTED_KEYS and the local key); unsigned bundles
   pass only with Trust(allow_unsigned=True);
2. bundles already complete in the output (layouts.base: marker or, for `native`, the
   manifest) are skipped;
3. all files of the others are downloaded by a thread pool and each sha256 is checked against
   the manifest; a mismatch fails that bundle, naming the file;
4. each bundle whose files all verified is rendered into a staging folder and renamed into
   place, so nothing half-written ever looks complete.

Failed bundles do not stop the others; `pull` raises PullError listing them at the end, after
the layout's indexes (e.g. SandMLE's ok-lists) were written for the bundles that made it.
Only the files a manifest lists are copied: anything else in the store never reaches `out`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from sandforge.storage.backends import open_store
from sandforge.storage.bundle import BundleError, check_manifest, safe_task_id, sha256
from sandforge.storage.layouts import Layout, get_layout
from sandforge.storage.layouts.base import sweep_abandoned
from sandforge.storage.signing import SignatureError, Trust, resolve
from sandforge.storage.store import Store, StoreError

WORKERS = 16
INSTALLERS = 4  # threads writing finished bundles into place


class SelectionError(BundleError):
    """What was asked for does not exist or cannot be parsed (bad input, not a failure)."""


class PullError(BundleError):
    """Some bundles could not be pulled; `result` holds what did succeed."""

    def __init__(self, result: PullResult):
        self.result = result
        lines = [f"{ref}: {message}" for ref, message in sorted(result.failed.items())]
        super().__init__(f"{len(lines)} bundle(s) failed:\n" + "\n".join(lines))


class Progress(Protocol):
    def start(self, files: int, total_bytes: int) -> None: ...
    def advance(self, nbytes: int) -> None: ...


@dataclass(frozen=True, order=True)
class BundleRef:
    task_id: str
    version: int

    def __str__(self) -> str:
        return f"{self.task_id}@{self.version}"


@dataclass
class PullResult:
    layout: str
    out: Path
    pulled: list[BundleRef] = field(default_factory=list)
    skipped: list[BundleRef] = field(default_factory=list)  # already complete in `out`
    failed: dict[str, str] = field(default_factory=dict)  # "task@version" -> why
    files: int = 0
    bytes: int = 0
    seconds: float = 0.0

    @property
    def task_ids(self) -> list[str]:
        return sorted(ref.task_id for ref in [*self.pulled, *self.skipped])

    def as_dict(self) -> dict[str, Any]:
        return {
            "layout": self.layout,
            "out": str(self.out),
            "pulled": [str(ref) for ref in self.pulled],
            "skipped": [str(ref) for ref in self.skipped],
            "failed": self.failed,
            "task_ids": self.task_ids,
            "files": self.files,
            "bytes": self.bytes,
            "seconds": round(self.seconds, 3),
        }


def select(store: Store, ids: Sequence[str] = (), where: str | None = None) -> list[BundleRef]:
    """Bundles by `ID` (newest version) or `ID@VERSION`, or by a catalog WHERE clause (the
    newest matching version of each task), or every task's newest version if neither."""
    if ids and where:
        raise SelectionError("select bundles by ids or by a WHERE clause, not both")
    if where is not None:
        from sandforge.storage.catalog import query

        newest: dict[str, int] = {}
        for row in query(store, where):
            newest[row["task_id"]] = max(row["version"], newest.get(row["task_id"], 0))
        return sorted(BundleRef(task, version) for task, version in newest.items())
    if not ids:
        return [BundleRef(task, version) for task, version in store.latest_versions()]
    return sorted({_resolve(store, text) for text in ids})


def _resolve(store: Store, text: str) -> BundleRef:
    task_id, _, version_text = text.partition("@")
    try:
        safe_task_id(task_id)
        wanted = int(version_text) if version_text else None
    except (BundleError, ValueError) as exc:
        raise SelectionError(f"bad bundle id {text!r}: use ID or ID@VERSION ({exc})") from None
    versions = store.versions(task_id)
    if not versions:
        raise SelectionError(f"no bundle {task_id!r} in {store}")
    if wanted is None:
        return BundleRef(task_id, versions[-1])
    if wanted not in versions:
        raise SelectionError(f"{task_id!r} has no version {wanted} in {store} (has {versions})")
    return BundleRef(task_id, wanted)


def pull(
    store: Store | str,
    refs: Iterable[BundleRef],
    out: str | Path,
    *,
    layout: str | Layout = "native",
    workers: int = WORKERS,
    progress: Progress | None = None,
    trust: Trust | None = None,
) -> PullResult:
    """Download, verify and lay out `refs` under `out`; see the module docstring."""
    store = open_store(store) if isinstance(store, str) else store
    trust = resolve(trust)
    shape = get_layout(layout) if isinstance(layout, str) else layout
    out = Path(out)
    result = PullResult(shape.name, out)
    started = time.monotonic()
    if out.is_dir():
        sweep_abandoned(out)
    with ThreadPoolExecutor(max(1, workers)) as pool:
        manifests = _manifests(store, sorted(set(refs)), pool, result, trust)
        complete = pool.map(lambda m: shape.is_complete(out, m), manifests.values())
        todo = {}
        for (ref, manifest), done in zip(manifests.items(), complete, strict=True):
            if done:
                result.skipped.append(ref)
            else:
                todo[ref] = manifest
        if progress is not None:
            sizes = [entry["bytes"] for m in todo.values() for entry in m["files"].values()]
            progress.start(len(sizes), sum(sizes))
        _download(store, todo, pool, shape, out, result, progress)
    result.pulled.sort()
    result.skipped.sort()
    shape.finish(out, [manifests[ref] for ref in sorted([*result.pulled, *result.skipped])])
    result.seconds = time.monotonic() - started
    if result.failed:
        raise PullError(result)
    return result


def _manifests(
    store: Store, refs: list[BundleRef], pool: ThreadPoolExecutor, result: PullResult, trust: Trust
) -> dict[BundleRef, dict[str, Any]]:
    futures = {pool.submit(_checked_manifest, store, ref, trust): ref for ref in refs}
    manifests = {}
    for future in as_completed(futures):
        ref = futures[future]
        try:
            manifests[ref] = future.result()
        except StoreError:
            raise  # the store itself failed: nothing else will work either
        except BundleError as exc:
            result.failed[str(ref)] = str(exc)
    return manifests


def _checked_manifest(store: Store, ref: BundleRef, trust: Trust) -> dict[str, Any]:
    where = store.location(ref.task_id, ref.version)
    manifest = store.read_manifest(ref.task_id, ref.version)
    try:
        check_manifest(manifest)
        trust.check(manifest)
    except SignatureError as exc:
        raise type(exc)(f"{where}: {exc}") from None
    except BundleError as exc:
        raise BundleError(f"{where}: {exc}") from None
    if (manifest.get("task_id"), manifest.get("version")) != (ref.task_id, ref.version):
        raise BundleError(f"{where}: manifest is another's")
    return manifest


def _download(
    store: Store,
    todo: dict[BundleRef, dict[str, Any]],
    pool: ThreadPoolExecutor,
    shape: Layout,
    out: Path,
    result: PullResult,
    progress: Progress | None,
) -> None:
    """Fetch every file in parallel; install each bundle, on its own threads, as soon as its
    last file verified (writing files costs as much as downloading them)."""
    futures: dict[Future, tuple[BundleRef, str]] = {}
    for ref, manifest in todo.items():
        for path, entry in manifest["files"].items():
            future = pool.submit(_fetch, store, ref, path, entry["sha256"])
            futures[future] = (ref, path)
    remaining = {ref: len(m["files"]) for ref, m in todo.items()}
    fetched: dict[BundleRef, dict[str, bytes]] = {ref: {} for ref in todo}
    with ThreadPoolExecutor(INSTALLERS) as installer:
        installing: dict[Future, BundleRef] = {}
        for future in as_completed(futures):
            ref, path = futures[future]
            try:
                data = future.result()
            except StoreError:
                raise
            except BundleError as exc:
                result.failed.setdefault(str(ref), str(exc))
            else:
                fetched[ref][path] = data
                result.files += 1
                result.bytes += len(data)
                if progress is not None:
                    progress.advance(len(data))
            remaining[ref] -= 1
            if remaining[ref] == 0:
                files = fetched.pop(ref)
                if str(ref) not in result.failed:
                    installing[installer.submit(shape.install, out, todo[ref], files)] = ref
        for future in as_completed(installing):
            ref = installing[future]
            try:
                future.result()
            except (BundleError, KeyError) as exc:  # KeyError: the layout needs an unlisted file
                result.failed[str(ref)] = f"cannot lay out for {shape.name}: {exc}"
            else:
                result.pulled.append(ref)


def _fetch(store: Store, ref: BundleRef, path: str, digest: str) -> bytes:
    where = store.location(ref.task_id, ref.version)
    try:
        data = store.read_file(ref.task_id, ref.version, path)
    except FileNotFoundError:
        raise BundleError(f"{where}: {path}: missing") from None
    if sha256(data) != digest:
        raise BundleError(f"{where}: {path}: sha256 mismatch (corrupted or tampered)")
    return data
