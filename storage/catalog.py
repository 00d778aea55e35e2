"""The catalog: one queryable table of every published bundle, kept in the store as Parquet.

    _catalog/parts/<task_id>@<version>.parquet   one row, written right after that publish
    _catalog/catalog.parquet                     many rows: `rebuild` (from the manifests) or
                                                 `compact` (folds the parts in) writes it

Publishers never rewrite a shared object, so concurrent publishers cannot lose each other's
rows. `rebuild` and `compact` replace catalog.parquet by compare-and-swap on its tag and only
then delete the parts they folded in; a part written meanwhile stays and is read next time.
A row may so exist twice (in catalog.parquet and as a part); queries keep one per
(task_id, version). Versions are immutable, so both copies are the same row.

Queries run DuckDB over local Parquet files: a LocalStore's own, or for any other store a cache
folder that is synced by tag (only new or changed objects are downloaded). The loaded table
is kept for the process until a file changes. The user's WHERE clause must make one SELECT
and runs with DuckDB's file access switched off, so it can read or write nothing else, within
a memory limit, on two threads, and is interrupted after QUERY_TIMEOUT seconds.

Anyone with write access to the store can leave junk under `_catalog/`: files that are not
Parquet, Parquet of another shape, names that are not safe object names. Readers skip each
one with a warning naming it, so one bad object never breaks the catalog for everyone.
`compact` leaves junk parts in place; `rebuild`, which derives every row from the manifests,
replaces catalog.parquet and removes every `.parquet` part, junk included.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import logging
import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from sandforge.storage.bundle import BundleError, check_manifest
from sandforge.storage.files import write_atomically
from sandforge.storage.local import LocalStore
from sandforge.storage.signing import Signer, default_signer, signer_of
from sandforge.storage.store import Store, StoreError, safe_object_name

from sandforge.bundle_files import PRIVATE, PUBLIC
from sandforge.tiers import REFERENCE_SUBMISSIONS, TIERS

FOLDER = "_catalog"
CATALOG = f"{FOLDER}/catalog.parquet"
PARTS = f"{FOLDER}/parts"
REPLACE_ATTEMPTS = 10
LOAD_ATTEMPTS = 3
WORKERS = 16
KEY_COLUMNS = ("task_id", "version", "content_hash")
QUERY_TIMEOUT = 10.0  # seconds; a WHERE over a million rows takes well under one
QUERY_MEMORY = "1GB"  # DuckDB memory_limit: the loaded catalog plus the query
QUERY_THREADS = 2

SCHEMA = pa.schema(
    [
        ("task_id", pa.string()),
        ("version", pa.int64()),
        ("seed_id", pa.string()),
        ("domain", pa.string()),
        ("modality", pa.string()),
        ("task_type", pa.string()),
        ("metric", pa.string()),
        ("direction", pa.string()),  # "higher" or "lower" is better
        ("is_lower_better", pa.bool_()),
        *((f"{tier}_threshold", pa.float64()) for tier in TIERS),
        *((f"{name}_score", pa.float64()) for name in REFERENCE_SUBMISSIONS),
        ("n_train", pa.int64()),
        ("n_test", pa.int64()),
        ("difficulty", pa.string()),  # easy, medium or hard (`generate --difficulty`)
        ("n_files", pa.int64()),
        ("total_bytes", pa.int64()),
        ("public_bytes", pa.int64()),
        ("private_bytes", pa.int64()),
        ("provider", pa.string()),
        ("provider_model", pa.string()),
        ("sandforge_version", pa.string()),
        ("created_at", pa.timestamp("s", tz="UTC")),
        ("content_hash", pa.string()),
        ("signer_key_id", pa.string()),  # whose valid signature the manifest carries; NULL: none
        ("crafts", pa.list_(pa.string())),  # crafts whose measured gain is >= one tier step
    ]
)
# One row per (task_id, version); is_latest marks each task's newest version.
VIEW = """
CREATE TABLE bundles AS
SELECT * EXCLUDE (copy), version = max(version) OVER (PARTITION BY task_id) AS is_latest
FROM (SELECT *, row_number() OVER (PARTITION BY task_id, version) AS copy FROM raw)
WHERE copy = 1
"""


log = logging.getLogger(__name__)
_LOCK = threading.Lock()  # one DuckDB connection per process, used by one query at a time
_CONNECTION: dict[str, Any] = {}


class CatalogQueryError(BundleError):
    """The WHERE clause is not valid SQL over the catalog's columns, or broke a limit."""


class JunkObject(ValueError):
    """A store object under `_catalog/` that is not a catalog Parquet file."""


@dataclass(frozen=True)
class Rebuilt:
    rows: int
    problems: list[str]  # bundles left out, with the reason


def catalog_row(manifest: dict[str, Any]) -> dict[str, Any]:
    """The catalog's row for one stored manifest (with its version)."""
    thresholds = manifest.get("thresholds") or {}
    scores = manifest.get("baseline_scores") or {}
    recipe = manifest.get("recipe") or {}
    provider = manifest.get("provider") or {}
    files = manifest.get("files") or {}
    lower = manifest.get("is_lower_better")
    return {
        "task_id": manifest["task_id"],
        "version": manifest["version"],
        "seed_id": manifest.get("seed_id"),
        "domain": manifest.get("domain"),
        "modality": manifest.get("modality"),
        "task_type": manifest.get("task_type"),
        "metric": manifest.get("metric"),
        "direction": None if lower is None else ("lower" if lower else "higher"),
        "is_lower_better": lower,
        **{f"{tier}_threshold": thresholds.get(tier) for tier in TIERS},
        **{f"{name}_score": scores.get(name) for name in REFERENCE_SUBMISSIONS},
        "n_train": recipe.get("n_train"),
        "n_test": recipe.get("n_test"),
        "difficulty": manifest.get("difficulty") or recipe.get("difficulty") or "medium",
        "n_files": len(files),
        "total_bytes": sum(entry["bytes"] for entry in files.values()),
        "public_bytes": _bytes_under(files, PUBLIC),
        "private_bytes": _bytes_under(files, PRIVATE),
        "provider": provider.get("name"),
        "provider_model": provider.get("model"),
        "sandforge_version": manifest.get("sandforge_version"),
        "created_at": dt.datetime.fromisoformat(manifest["created_at"]),
        "content_hash": manifest["content_hash"],
        "signer_key_id": signer_of(manifest),
        "crafts": sorted({c["craft"] for c in manifest.get("crafts") or [] if c.get("carried")}),
    }


def part_name(task_id: str, version: int) -> str:
    return f"{PARTS}/{task_id}@{version}.parquet"


def add_to_catalog(store: Store, manifest: dict[str, Any]) -> None:
    """Record one published bundle (manifest with its version). Idempotent."""
    row = catalog_row(manifest)
    store.put_object(part_name(row["task_id"], row["version"]), parquet_bytes([row]))


def publish_and_catalog(
    store: Store, manifest: dict[str, Any], files: dict[str, bytes], signer: Signer | None = None
) -> tuple[int, bool]:
    """`store.publish`, then the catalog row; see `publish_signed`."""
    stored, created = publish_signed(store, manifest, files, signer)
    return stored["version"], created


def publish_signed(
    store: Store, manifest: dict[str, Any], files: dict[str, bytes], signer: Signer | None = None
) -> tuple[dict[str, Any], bool]:
    """`store.publish` signed by `signer` (default: the local key), then the catalog row;
    returns (the stored manifest, created). The row is written even when the content was
    already stored, so publishing again heals a row lost to a crash between the two steps;
    it then describes the manifest that is stored (its signer, its created_at)."""
    signer = signer or default_signer()
    version, created = store.publish(manifest, files, signer=signer)
    if created:  # Ed25519 is deterministic: the same signature the store just wrote
        stored = signer.sign({**manifest, "version": version})
    else:
        stored = store.read_manifest(manifest["task_id"], version)
    add_to_catalog(store, stored)
    return stored, created


def parquet_bytes(rows: Iterable[dict[str, Any]]) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(list(rows), schema=SCHEMA), buffer)
    return buffer.getvalue()


# -- rebuilding and compacting ---------------------------------------------------------------


def rebuild(store: Store, workers: int = WORKERS) -> Rebuilt:
    """Reconstruct the catalog from the manifests of every stored version."""
    problems: list[str] = []

    def from_manifests(_current: bytes | None, parts: list[str]) -> tuple[list[dict], list[str]]:
        problems.clear()  # a retry scans again
        with ThreadPoolExecutor(workers) as pool:
            results = list(pool.map(lambda ref: _checked_row(store, *ref), store.list_bundles()))
        problems.extend(r for r in results if isinstance(r, str))
        ours = [name for name in parts if _junk_name(name) is None]
        return [r for r in results if isinstance(r, dict)], ours  # every part is redundant

    rows = _replace(store, from_manifests)
    return Rebuilt(rows, list(problems))


def compact(store: Store, workers: int = WORKERS) -> int:
    """Fold the parts into catalog.parquet; returns its row count. Junk parts stay."""

    def with_parts(current: bytes | None, parts: list[str]) -> tuple[list[dict], list[str]]:
        try:
            rows = _rows(current) if current is not None else []
        except JunkObject as exc:
            raise StoreError(
                f"{store}/{CATALOG}: {exc}; `sandforge catalog rebuild` replaces it"
            ) from None
        with ThreadPoolExecutor(workers) as pool:
            tables = list(pool.map(lambda name: _read_rows(store, name), parts))
        folded = [name for name, table in zip(parts, tables, strict=True) if table is not None]
        return rows + [row for table in tables for row in table or []], folded

    return _replace(store, with_parts)


def _replace(
    store: Store,
    build: Callable[[bytes | None, list[str]], tuple[list[dict[str, Any]], list[str]]],
) -> int:
    """Compare-and-swap catalog.parquet with the rows of `build(current data, part names)`,
    then delete the parts it folded in. Retries when another writer replaced it in between."""
    for _ in range(REPLACE_ATTEMPTS):
        current = store.get_object(CATALOG)
        parts = sorted(store.list_objects(PARTS))
        built, folded = build(current[0] if current else None, parts)
        rows = _unique(built)
        data = parquet_bytes(rows)
        if current is None:
            written = store.put_object(CATALOG, data, create_only=True)
        else:
            written = store.put_object(CATALOG, data, if_match=current[1])
        if written:
            for name in folded:
                store.delete_object(name)
            return len(rows)
    raise StoreError(f"{store}/{CATALOG}: kept changing while being rewritten")


def _checked_row(store: Store, task_id: str, version: int) -> dict[str, Any] | str:
    try:
        manifest = store.read_manifest(task_id, version)
        check_manifest(manifest)
        if (manifest.get("task_id"), manifest.get("version")) != (task_id, version):
            raise BundleError("manifest.json belongs to another bundle")
        return catalog_row(manifest)  # a signature that does not verify: SignatureError
    except StoreError:
        raise
    except (BundleError, KeyError, ValueError) as exc:
        return f"{store.location(task_id, version)}: {exc}"


def _read_rows(store: Store, name: str) -> list[dict[str, Any]] | None:
    """A part's rows; [] when it was deleted meanwhile (folded in already), None for junk."""
    try:
        found = store.get_object(name)
        return _rows(found[0]) if found else []
    except (JunkObject, BundleError) as exc:
        log.warning("left out junk %s/%s: %s", store, name, exc)
        return None


def _rows(data: bytes) -> list[dict[str, Any]]:
    try:
        table = pq.read_table(io.BytesIO(data))
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise JunkObject(f"not a Parquet file ({_short(exc)})") from None
    _check_schema(table.schema)
    columns = [
        table[f.name] if f.name in table.schema.names else pa.nulls(len(table), f.type)
        for f in SCHEMA
    ]
    return pa.Table.from_arrays(columns, schema=SCHEMA).to_pylist()


def _check_schema(schema: pa.Schema) -> None:
    """The catalog's columns and types, some perhaps missing (a part written before a column
    was added), the key columns present: anything else is not a catalog file."""
    wanted = {f.name: f.type for f in SCHEMA}
    odd = sorted(f.name for f in schema if not _same_type(f.type, wanted.get(f.name)))
    missing = [name for name in KEY_COLUMNS if name not in schema.names]
    if odd or missing:
        raise JunkObject(f"not a catalog table (unexpected columns {odd[:5]}, missing {missing})")


def _same_type(found: pa.DataType, wanted: pa.DataType | None) -> bool:
    if wanted is not None and pa.types.is_timestamp(found) and pa.types.is_timestamp(wanted):
        return found.tz == wanted.tz  # Parquet stores seconds as milliseconds
    return found == wanted


def _short(exc: Exception) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__


def _unique(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_key = {(row["task_id"], row["version"]): row for row in rows}
    return [by_key[key] for key in sorted(by_key)]


def _bytes_under(files: dict[str, dict[str, Any]], folder: str) -> int:
    return sum(entry["bytes"] for path, entry in files.items() if path.startswith(f"{folder}/"))


# -- querying --------------------------------------------------------------------------------


def query(
    store: Store,
    where: str | None = None,
    *,
    cache_dir: Path | None = None,
    timeout: float = QUERY_TIMEOUT,
) -> list[dict]:
    """Catalog rows (plus `is_latest`) matching an SQL WHERE clause, by task id and version.

    The clause runs within QUERY_MEMORY and is interrupted after `timeout` seconds; either
    is a CatalogQueryError, as is anything but one condition."""
    import duckdb

    sql = "SELECT * FROM bundles" + (f" WHERE ({where})" if where else "")
    sql += " ORDER BY task_id, version"
    with _LOCK:
        connection = _loaded(store, cache_dir)
        timer = threading.Timer(timeout, connection.interrupt)
        try:
            statements = connection.extract_statements(sql)
            if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
                raise CatalogQueryError(f"catalog query {where!r}: give one SQL condition")
            timer.start()
            cursor = connection.execute(sql)
            columns = [column[0] for column in cursor.description]
            found = cursor.fetchall()
        except duckdb.InterruptException:
            raise CatalogQueryError(
                f"catalog query {where!r} stopped: it ran longer than {timeout:g} s"
            ) from None
        except duckdb.OutOfMemoryException:
            raise CatalogQueryError(
                f"catalog query {where!r} stopped: it needs more than {QUERY_MEMORY} of memory"
            ) from None
        except duckdb.Error as exc:
            raise CatalogQueryError(f"catalog query {where!r} failed: {_short(exc)}") from None
        finally:
            timer.cancel()
        return [dict(zip(columns, row, strict=True)) for row in found]


def _loaded(store: Store, cache_dir: Path | None) -> Any:
    """A DuckDB holding the catalog's current files, loaded again only when one of them
    changed: a process that queries repeatedly pays for the listing, not for the load."""
    import duckdb

    attempts = LOAD_ATTEMPTS
    while True:
        files = catalog_files(store, cache_dir)
        try:
            signature = tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in files)
            if _CONNECTION.get("signature") != signature:
                _CONNECTION.update(signature=signature, connection=_connect(store, files))
            return _CONNECTION["connection"]
        except (FileNotFoundError, duckdb.IOException):
            attempts -= 1  # a compaction removed a part meanwhile: list again
            if not attempts:
                raise


def _connect(store: Store, files: list[Path]) -> Any:
    """An in-memory DuckDB holding the `bundles` table, with file access switched off and
    the query limits set; junk files are left out with a warning."""
    import duckdb

    connection = duckdb.connect(":memory:")
    connection.register("empty", SCHEMA.empty_table())
    connection.execute("CREATE TABLE raw AS SELECT * FROM empty")
    connection.unregister("empty")
    with ThreadPoolExecutor(WORKERS) as pool:  # footers only; pyarrow releases the GIL
        problems = list(pool.map(lambda path: _schema_problem(store, path), files))
    usable = [path for path, problem in zip(files, problems, strict=True) if problem is None]
    insert = "INSERT INTO raw BY NAME SELECT * FROM read_parquet($files, union_by_name = true)"
    try:
        if usable:
            connection.execute(insert, {"files": [str(path) for path in usable]})
    except duckdb.Error:  # a part removed meanwhile, or one whose data does not read
        for path in usable:
            try:
                connection.execute(insert, {"files": [str(path)]})
            except duckdb.Error as exc:
                if not path.exists():
                    raise FileNotFoundError(path) from None  # the caller lists again
                _warn_junk(store, path, f"unreadable Parquet data ({_short(exc)})")
    connection.execute(VIEW)
    connection.execute("DROP TABLE raw")
    connection.execute("SET temp_directory = ''")  # never spill a query to disk
    connection.execute("SET enable_external_access = false")
    connection.execute(f"SET memory_limit = '{QUERY_MEMORY}'")
    connection.execute(f"SET threads = {QUERY_THREADS}")
    connection.execute("SET lock_configuration = true")
    return connection


def _schema_problem(store: Store, path: Path) -> str | None:
    """Why a local Parquet file is not a catalog file (warned here), or None."""
    try:
        _check_schema(pq.read_schema(path))
    except FileNotFoundError:
        raise
    except JunkObject as exc:
        problem = str(exc)
    except (pa.ArrowException, OSError, ValueError) as exc:
        problem = f"not a Parquet file ({_short(exc)})"
    else:
        return None
    _warn_junk(store, path, problem)
    return problem


def _warn_junk(store: Store, path: Path | str, reason: str) -> None:
    log.warning("skipped junk %s: %s", _object_name(store, path), reason)


def _object_name(store: Store, path: Path | str) -> str:
    """`<store>/_catalog/...` for a local file or a cached copy of a store object."""
    text = "/" + Path(path).as_posix()
    marker = f"/{FOLDER}/"
    return f"{store}/{FOLDER}/{text.split(marker, 1)[1]}" if marker in text else text


def catalog_files(store: Store, cache_dir: Path | None = None) -> list[Path]:
    """Local Parquet files holding the catalog: the store's own if it is local, else a synced
    cache (`cache_dir`, default under $SANDFORGE_CACHE or ~/.cache/sandforge)."""
    if isinstance(store, LocalStore):
        found = sorted(
            p for p in (store.root / FOLDER).rglob("*") if p.is_file() and p.name[0] != "."
        )
        for path in found:
            if path.suffix != ".parquet":
                _warn_junk(store, path, "not a .parquet file")
        return [p for p in found if p.suffix == ".parquet"]
    return _sync(store, cache_dir or default_cache_dir(store))


def _junk_name(name: str) -> str | None:
    """Why an object under `_catalog/` is not worth downloading, or None."""
    try:
        safe_object_name(name)
    except BundleError as exc:
        return str(exc)
    return None if name.endswith(".parquet") else "not a .parquet file"


def default_cache_dir(store: Store) -> Path:
    root = Path(os.environ.get("SANDFORGE_CACHE") or Path.home() / ".cache" / "sandforge")
    return root / "catalog" / hashlib.sha256(repr(store).encode()).hexdigest()[:16]


def _sync(store: Store, cache: Path, workers: int = WORKERS) -> list[Path]:
    """Mirror `_catalog/` into `cache`, downloading only objects whose tag changed."""
    cache.mkdir(parents=True, exist_ok=True)
    index_path = cache / "index.json"
    try:
        index: dict[str, str] = json.loads(index_path.read_text())
    except (FileNotFoundError, ValueError):
        index = {}
    listing = {}
    for name, tag in store.list_objects(FOLDER).items():
        if reason := _junk_name(name):
            _warn_junk(store, name, reason)
        else:
            listing[name] = tag
    stale = [
        name
        for name, tag in listing.items()
        if index.get(name) != tag or not (cache / name).is_file()
    ]

    def download(name: str) -> tuple[str, str | None]:
        found = store.get_object(name)
        if found is None:  # deleted since the listing (folded in by a compaction)
            return name, None
        write_atomically(cache / name, found[0])
        return name, found[1]

    with ThreadPoolExecutor(workers) as pool:
        for name, tag in pool.map(download, stale):
            if tag is None:
                listing.pop(name)
            else:
                index[name] = tag
    for name in set(index) - set(listing):
        (cache / name).unlink(missing_ok=True)
        del index[name]
    write_atomically(index_path, json.dumps(index, sort_keys=True).encode())
    return sorted(cache / name for name in listing)
