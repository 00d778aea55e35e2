"""YAML files that each hold one pydantic model (seed cards, domains), read with errors a
person can act on: `<file>: field 'features.age.kind': <what is wrong>`, every problem at once.

List entries are named by their `name` where they have one (`features.age`, not
`features.3`), and model-level checks name their field by prefixing the message with it
(`"targets: needs >= 2 targets"`). Seeds is the lowest layer that reads such files, so the
agents' domain library imports this downward.

Such files may come from anyone (a card contributed, a folder given to `seeds validate`), so
they are read bounded: only a regular file of at most MAX_FILE_BYTES, parsed by
`bounded_yaml` (no anchors or aliases, bounded depth and integers, no duplicate keys).
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from sandforge.seeds.bounded_yaml import YamlLimitError
from sandforge.seeds.bounded_yaml import load as load_yaml

Model = TypeVar("Model", bound=BaseModel)

_FIELD_PREFIX = re.compile(r"^([a-z_][a-z0-9_.]*): (.*)$", re.DOTALL)
MAX_FILE_BYTES = 64 * 1024  # the largest shipped card is 3 KB, the largest domain 7 KB


def read_text(path: Path, error: type[Exception]) -> str:
    """The file's text, read only from a regular file of at most MAX_FILE_BYTES: a FIFO or
    device must not block or stream forever. Opened non-blocking and checked with fstat on
    the descriptor, so the file cannot be swapped between the check and the read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise error(f"{path}: cannot read: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise error(f"{path}: not a regular file")
        if info.st_size > MAX_FILE_BYTES:
            raise error(f"{path}: too large ({info.st_size} bytes; at most {MAX_FILE_BYTES})")
        try:
            data = handle.read(MAX_FILE_BYTES + 1)  # the file may grow after fstat
        except OSError as exc:
            raise error(f"{path}: cannot read: {exc.strerror}") from None
    if len(data) > MAX_FILE_BYTES:
        raise error(f"{path}: too large (at most {MAX_FILE_BYTES} bytes)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 text (byte {exc.start})") from None


def parse_model(
    text: str, path: Path, model: type[Model], error: type[Exception], what: str
) -> Model:
    """`text` (from `path`) as a `model`, or `error` naming the file, each field and problem;
    `what` names the file kind in the message for a file that is not a mapping."""
    try:
        data = load_yaml(text)
    except YamlLimitError as exc:
        raise error(f"{path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise error(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise error(f"{path}: {what} must be a YAML mapping")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise error(_describe(exc, path, data)) from None


def _describe(error: ValidationError, path: Path, data: Any) -> str:
    lines = []
    for e in error.errors():
        message = e["msg"].removeprefix("Value error, ")
        field = _field_path(e["loc"], data)
        match = _FIELD_PREFIX.match(message)
        if e["type"] == "value_error" and match:  # model checks prefix the field they concern
            field = ".".join(p for p in (field, match[1]) if p)
            message = match[2]
        lines.append(f"{path}: field {field!r}: {message}")
    return "\n".join(lines)


def _field_path(loc: tuple[int | str, ...], data: Any) -> str:
    """Dotted path, with list indexes replaced by the entry's name where it has one."""
    parts, node = [], data
    for key in loc:
        child = None
        if isinstance(node, dict):
            child = node.get(key)
        elif isinstance(node, list) and isinstance(key, int) and key < len(node):
            child = node[key]
            name = child.get("name") if isinstance(child, dict) else None
            if isinstance(name, str) and name:
                key = name
        parts.append(str(key))
        node = child
    return ".".join(parts)
