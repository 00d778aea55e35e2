"""`sandforge storage up|down|status`, `sandforge catalog [rebuild|compact]`, `sandforge pull`:
the development S3 server, the catalog of published bundles, and verified downloads."""

from __future__ import annotations

import argparse
import datetime as dt
import os
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from sandforge.commands import arguments
from sandforge.commands.keys import add_trust_arguments, trust_from
from sandforge.commands.output import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_OK,
    console,
    fail,
    open_store_arg,
    positive_int,
    print_json,
)
from sandforge.tiers import TIERS

DEFAULT_DATA_DIR = ".sandforge/s3"
DEFAULT_BUCKET = "sandforge"
LAYOUT_NAMES = ("native", "sandmle", "mlebench", "mledojo")
CATALOG_COLUMNS = ("task_type", "metric", "direction")  # plus the bundle and its thresholds


# -- the development S3 server ------------------------------------------------------------------


def cmd_storage_up(args: argparse.Namespace) -> int:
    from sandforge.storage import s3_server
    from sandforge.storage.bundle import BundleError
    from sandforge.storage.s3 import create_bucket

    try:
        status = s3_server.up(args.data_dir, port=args.port)
    except s3_server.S3ServerError as exc:
        fail(exc)
        return EXIT_FAILED
    os.environ.update(status.env())  # this process talks to the server it just started
    try:
        create_bucket(args.bucket, endpoint_url=status.endpoint)
    except BundleError as exc:  # StoreError included
        fail(exc)
        return EXIT_FAILED
    if args.json:
        print_json(_status_dict(status) | {"bucket": args.bucket})
        return EXIT_OK
    started = f"started in {status.seconds_to_start} s" if status.seconds_to_start else "running"
    console.print(
        f"SeaweedFS S3 {started} at {status.endpoint} (pid {status.pid}, data in "
        f"{status.data_dir}); bucket {args.bucket!r} is ready.\n"
        f'Use it: eval "$(sandforge storage status)"; then --store s3://{args.bucket}/bundles'
    )
    print(status.export_lines(), end="")
    return EXIT_OK


def cmd_storage_down(args: argparse.Namespace) -> int:
    from sandforge.storage import s3_server

    stopped = s3_server.down(args.data_dir)
    console.print("stopped" if stopped else f"not running (data dir {args.data_dir})")
    return EXIT_OK


def cmd_storage_status(args: argparse.Namespace) -> int:
    from sandforge.storage import s3_server

    status = s3_server.status(args.data_dir)
    if args.json:
        print_json(_status_dict(status))
    else:
        print(status, end="")
    return EXIT_OK if status.running else EXIT_FAILED


def _status_dict(status: Any) -> dict[str, Any]:
    return {
        "running": status.running,
        "pid": status.pid,
        "endpoint": status.endpoint,
        "data_dir": str(status.data_dir),
        "env": status.env(),
    }


# -- the catalog ---------------------------------------------------------------------------------


def cmd_catalog(args: argparse.Namespace) -> int:
    from sandforge.storage.catalog import CatalogQueryError, query
    from sandforge.storage.store import StoreError

    store = open_store_arg(args.store, must_exist=True)
    if store is None:
        return EXIT_BAD_INPUT
    try:
        rows = query(store, args.where)
    except CatalogQueryError as exc:
        fail(exc)
        return EXIT_BAD_INPUT
    except StoreError as exc:
        fail(exc)
        return EXIT_FAILED
    if args.json:
        print_json([_jsonable(row) for row in rows])
        return EXIT_OK
    table = Table("bundle", *CATALOG_COLUMNS, *TIERS, title=f"{len(rows)} bundle(s)")
    for row in rows:
        cells = [_cell(row[column]) for column in CATALOG_COLUMNS]
        cells += [_cell(row[f"{tier}_threshold"]) for tier in TIERS]
        table.add_row(f"{row['task_id']}@{row['version']}", *cells)
    Console().print(table)
    return EXIT_OK


def cmd_catalog_maintenance(args: argparse.Namespace) -> int:
    from sandforge.storage.catalog import compact, rebuild
    from sandforge.storage.store import StoreError

    store = open_store_arg(args.store, must_exist=True)
    if store is None:
        return EXIT_BAD_INPUT
    try:
        if args.catalog_command == "rebuild":
            rebuilt = rebuild(store)
            rows, problems = rebuilt.rows, rebuilt.problems
        else:
            rows, problems = compact(store), []
    except StoreError as exc:
        fail(exc)
        return EXIT_FAILED
    for problem in problems:
        fail(problem, label="left out:")
    if args.json:
        print_json({"store": store.url, "rows": rows, "problems": problems})
    else:
        console.print(f"catalog of {store}: {rows} row(s) ({args.catalog_command})")
    return EXIT_FAILED if problems else EXIT_OK


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, dt.datetime) else v for k, v in row.items()}


def _cell(value: Any) -> str:
    if value is None:
        return ""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


# -- pulling -------------------------------------------------------------------------------------


class _Bar:
    """storage.pulling.Progress on a rich progress bar (bytes)."""

    def __init__(self, progress: Any):
        self.progress = progress
        self.task: Any = None

    def start(self, files: int, total_bytes: int) -> None:
        self.task = self.progress.add_task(f"{files} file(s)", total=total_bytes)

    def advance(self, nbytes: int) -> None:
        self.progress.advance(self.task, nbytes)


def run_pull(
    store: Any,
    args: argparse.Namespace,
    ids: list[str],
    where: str | None,
    trust: Any,
    **options: Any,
) -> int:
    """Select, pull with a progress bar, report; shared by `pull` and `export`."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TransferSpeedColumn,
    )

    from sandforge.storage.catalog import CatalogQueryError
    from sandforge.storage.layouts import get_layout
    from sandforge.storage.pulling import PullError, SelectionError, pull, select
    from sandforge.storage.store import StoreError

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeElapsedColumn(),
    )
    try:
        refs = select(store, ids, where)
        with Progress(*columns, console=console, disable=args.json) as progress:
            result = pull(
                store,
                refs,
                Path(args.out),
                layout=get_layout(args.layout, **options),
                workers=args.workers,
                progress=_Bar(progress),
                trust=trust,
            )
    except (SelectionError, CatalogQueryError) as exc:
        fail(exc)
        return EXIT_BAD_INPUT
    except PullError as exc:
        _report_pull(exc.result, args.json)
        fail(exc)
        return EXIT_FAILED
    except StoreError as exc:
        fail(exc)
        return EXIT_FAILED
    _report_pull(result, args.json)
    return EXIT_OK


def _report_pull(result: Any, as_json: bool) -> None:
    if as_json:
        print_json(result.as_dict())
        return
    console.print(
        f"{len(result.pulled)} pulled, {len(result.skipped)} already verified, "
        f"{len(result.failed)} failed: {result.files} file(s), {result.bytes / 1e6:.2f} MB in "
        f"{result.seconds:.2f} s -> {result.out} ({result.layout} layout)"
    )


def cmd_pull(args: argparse.Namespace) -> int:
    store, trust = open_store_arg(args.store, must_exist=True), trust_from(args)
    if store is None or trust is None:
        return EXIT_BAD_INPUT
    ids = [part for text in args.id or [] for part in text.split(",") if part]
    return run_pull(store, args, ids, args.where, trust)


# -- registration --------------------------------------------------------------------------------


def register(commands: argparse._SubParsersAction) -> None:
    _register_server(commands)
    _register_catalog(commands)

    pull = commands.add_parser(
        "pull",
        help="download verified bundles, optionally in a consumer's layout",
        description="Download bundles in parallel, check every file's sha256 against the "
        "manifest, and lay them out. Bundles already complete in --out are skipped.",
    )
    arguments.add_store_option(pull)
    which = pull.add_mutually_exclusive_group(required=True)
    which.add_argument("--id", action="append", help="ID or ID@VERSION (repeat or comma-separate)")
    which.add_argument(
        "--where", type=arguments.sql_condition, help="SQL condition over the catalog's columns"
    )
    pull.add_argument("--out", required=True, type=arguments.folder, help="output folder")
    pull.add_argument("--layout", choices=LAYOUT_NAMES, default="native")
    pull.add_argument("--workers", type=positive_int, default=16, help="parallel downloads")
    pull.add_argument("--json", action="store_true", help="print the result as JSON")
    add_trust_arguments(pull)
    pull.set_defaults(handler=cmd_pull)


def _register_server(commands: argparse._SubParsersAction) -> None:
    server = commands.add_parser("storage", help="a local S3 server (SeaweedFS) for development")
    actions = server.add_subparsers(dest="storage_command", required=True)
    for name, handler, text in (
        ("up", cmd_storage_up, "start it (detached) and create the bucket"),
        ("down", cmd_storage_down, "stop it; the data stays"),
        ("status", cmd_storage_status, "print its state and the env vars to use it"),
    ):
        action = actions.add_parser(name, help=text)
        action.add_argument(
            "--data-dir",
            type=arguments.folder,
            default=Path(DEFAULT_DATA_DIR),
            help=f"credentials and data, kept across restarts (default {DEFAULT_DATA_DIR})",
        )
        if name == "up":
            action.add_argument(
                "--port", type=arguments.port, default=8333, help="S3 port (default 8333)"
            )
            action.add_argument(
                "--bucket",
                type=arguments.bucket_name,
                default=DEFAULT_BUCKET,
                help="bucket to create",
            )
        if name != "down":
            action.add_argument("--json", action="store_true")
        action.set_defaults(handler=handler)


def _register_catalog(commands: argparse._SubParsersAction) -> None:
    catalog = commands.add_parser(
        "catalog",
        help="query the catalog of published bundles",
        description="One row per published bundle version (plus is_latest), queried with "
        "DuckDB: --where takes any SQL condition over the columns (see --json).",
    )
    arguments.add_store_option(catalog)
    catalog.add_argument(
        "--where",
        type=arguments.sql_condition,
        help="SQL condition, e.g. \"metric = 'rmse' AND is_latest\"",
    )
    catalog.add_argument("--json", action="store_true", help="print the rows as JSON")
    catalog.set_defaults(handler=cmd_catalog)
    maintenance = catalog.add_subparsers(dest="catalog_command")
    for name, text in (
        ("rebuild", "reconstruct the catalog from every stored manifest"),
        ("compact", "fold the per-bundle rows into one Parquet file"),
    ):
        action = maintenance.add_parser(name, help=text)
        action.add_argument(
            "--store", default=argparse.SUPPRESS, type=arguments.store_url, help="bundle store"
        )
        action.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
        action.set_defaults(handler=cmd_catalog_maintenance)
