"""argparse types that refuse a bad argument while parsing: usage, a message naming the
problem, exit 2, before any command imports Prefect or touches a store.

Only the form is checked here; whether a store exists is the command's business (a new store
is fine for `generate`, a missing one is an error for the commands that read).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

MAX_PORT = 65535


def port(text: str) -> int:
    """A TCP port to listen on: 1-65535."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 1 <= value <= MAX_PORT:
        raise argparse.ArgumentTypeError(f"port must be 1-{MAX_PORT}, got {value}")
    return value


def store_url(text: str) -> str:
    """A local path, file:///absolute/path or s3://bucket[/prefix]."""
    if not text.strip():
        raise argparse.ArgumentTypeError("empty store: give a path, file:///path or s3://bucket")
    scheme, sep, rest = text.partition("://")
    if not sep:
        return text
    if scheme == "file":
        if not rest.startswith("/"):
            raise argparse.ArgumentTypeError(
                f"{text!r}: a file:// URL needs an absolute path (file:///abs/path); "
                "give a relative path without file://"
            )
        return text
    if scheme == "s3":
        bucket, _, prefix = rest.partition("/")
        if not bucket:
            raise argparse.ArgumentTypeError(f"{text!r}: expected s3://bucket[/prefix]")
        bucket_name(bucket)
        if any(part in (".", "..") for part in prefix.split("/")):
            raise argparse.ArgumentTypeError(f"{text!r}: '.' and '..' are not prefix segments")
        return text
    raise argparse.ArgumentTypeError(
        f"unsupported store {text!r}: use a local path, file:///path or s3://bucket[/prefix]"
    )


def bucket_name(text: str) -> str:
    """An S3 bucket name by AWS's rules: 3-63 of a-z, 0-9, '.', '-'."""
    from sandforge.storage.s3 import BUCKET_PATTERN

    if not re.fullmatch(BUCKET_PATTERN, text) or ".." in text:
        raise argparse.ArgumentTypeError(
            f"invalid S3 bucket name {text!r}: 3-63 lowercase letters, digits, '.' and '-', "
            "starting and ending with a letter or digit"
        )
    return text


def folder(text: str) -> Path:
    """A folder to write into: absent (it is created) or a directory, never a file."""
    path = Path(text)
    if not text.strip():
        raise argparse.ArgumentTypeError("empty folder name")
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: exists and is not a folder")
    return path


def sql_condition(text: str) -> str:
    """A non-empty WHERE condition (DuckDB checks the rest)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("empty condition: give SQL, e.g. \"metric = 'rmse'\"")
    return text


def bundle_folder(text: str) -> str:
    """A bundle folder: one holding manifest.json (whether it verifies is the command's job)."""
    from sandforge.storage.bundle import MANIFEST

    if not text.strip():
        raise argparse.ArgumentTypeError("empty bundle path")
    path = Path(text)
    if not path.is_dir():
        what = "is not a folder" if path.exists() else "does not exist"
        raise argparse.ArgumentTypeError(f"no bundle at {text}: it {what}")
    if not (path / MANIFEST).is_file():
        raise argparse.ArgumentTypeError(f"no bundle at {text}: it has no {MANIFEST}")
    return text


HOSTNAME_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


def host(text: str) -> str:
    """An address to bind: an IPv4/IPv6 address or a host name."""
    import ipaddress

    try:
        ipaddress.ip_address(text)
        return text
    except ValueError:
        pass
    labels = text.removesuffix(".").split(".")
    if len(text) > 253 or not all(HOSTNAME_LABEL.fullmatch(label) for label in labels):
        raise argparse.ArgumentTypeError(f"not a host name or IP address: {text!r}")
    return text


def add_store_option(parser: argparse.ArgumentParser, *, required: bool = False) -> None:
    """`--store`, spelled once for every command that reads or writes a store."""
    where = "path, file:///path or s3://bucket/prefix"
    parser.add_argument(
        "--store",
        required=required,
        default=None if required else "store",
        type=store_url,
        help=f"bundle store: {where}" + ("" if required else " (default ./store)"),
    )
