"""`sandforge` command line; each command group lives in sandforge/commands/.

Exit codes: 0 success, 1 the work ran but failed its goal (quota missed, hash mismatch,
corrupted bundle), 2 bad input (unknown seed, malformed card, bad arguments).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from sandforge.commands import bundles, generate, keys, seeds, server, storage
from sandforge.commands.output import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK

__all__ = ["EXIT_BAD_INPUT", "EXIT_FAILED", "EXIT_OK", "build_parser", "main"]
COMMAND_GROUPS = (seeds, generate, bundles, server, storage, keys)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sandforge",
        description="Generate, verify and publish small MLE tasks from seed competitions.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="show pipeline logs")
    commands = parser.add_subparsers(dest="command", required=True)
    for group in COMMAND_GROUPS:
        group.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if args.verbose:
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "INFO")
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
