"""What every command shares: exit codes, the stderr console, errors and JSON output."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from rich.console import Console
from rich.markup import escape

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
console = Console(stderr=True, soft_wrap=True)  # whole lines: messages get grepped


def prefect_defaults() -> None:
    """Quiet, offline-friendly Prefect unless the user configured it otherwise."""
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")


def fail(message: object, label: str = "error:") -> None:
    """One red label, then the message verbatim (it may hold brackets rich would parse)."""
    console.print(f"[red]{label}[/red] {escape(str(message))}")


def open_store_arg(url: str, *, must_exist: bool = False) -> Any:
    """The store behind a --store argument, or None after saying why it is unusable.

    Commands that read need `must_exist`: a mistyped local path is an error, not an empty store.
    """
    from sandforge.storage.backends import open_store
    from sandforge.storage.bundle import BundleError
    from sandforge.storage.local import LocalStore

    try:
        store = open_store(url)
    except BundleError as exc:
        fail(exc)
        return None
    if must_exist and isinstance(store, LocalStore) and not store.root.is_dir():
        what = "is not a folder" if store.root.exists() else "does not exist"
        fail(f"no store at {store.root}: the folder {what}")
        return None
    return store


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, sort_keys=True, default=str) + "\n")
