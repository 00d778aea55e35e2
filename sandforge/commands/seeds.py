"""`sandforge seeds`: list and validate seed cards."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.table import Table

from sandforge.commands.output import (
    EXIT_BAD_INPUT,
    EXIT_OK,
    console,
    fail,
    print_json,
)


def cmd_seeds_list(args: argparse.Namespace) -> int:
    from sandforge.seeds.registry import MLE_BENCH_LITE, load_all

    cards = load_all()
    rows = [
        {
            "id": c.id,
            "modality": c.modality.value,
            "task_type": c.task_type.value,
            "metric": c.metric,
            "generatable": c.generatable,
            "mle_bench_lite": c.id in MLE_BENCH_LITE,
        }
        for c in cards
    ]
    if args.json:
        print_json(rows)
        return EXIT_OK
    table = Table(title=f"{len(rows)} seed cards")
    for column in ("id", "modality", "task type", "metric", "generatable", "lite"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            r["id"],
            r["modality"],
            r["task_type"],
            r["metric"],
            "yes" if r["generatable"] else "no",
            "L" if r["mle_bench_lite"] else "",
        )
    Console().print(table)
    return EXIT_OK


def cmd_seeds_validate(args: argparse.Namespace) -> int:
    from sandforge.seeds.card import SeedCardError, load_card

    path = Path(args.path)
    paths = sorted(path.glob("*.yaml")) if path.is_dir() else [path]
    if not paths:
        fail(f"no seed cards (*.yaml) in {path}")
        return EXIT_BAD_INPUT
    failures = 0
    for p in paths:
        try:
            card = load_card(p)
            console.print(f"[green]ok[/green] {p} ({card.task_type.value}, {card.metric})")
        except SeedCardError as exc:
            failures += 1
            fail(exc, label="invalid")
    return EXIT_BAD_INPUT if failures else EXIT_OK


def register(commands: argparse._SubParsersAction) -> None:
    seeds = commands.add_parser("seeds", help="list and validate seed cards")
    seed_commands = seeds.add_subparsers(dest="seeds_command", required=True)
    listing = seed_commands.add_parser("list", help="list the shipped seed cards")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(handler=cmd_seeds_list)
    validate = seed_commands.add_parser("validate", help="validate a card file or folder")
    validate.add_argument("path", help="a seed card .yaml or a folder of them")
    validate.set_defaults(handler=cmd_seeds_validate)
