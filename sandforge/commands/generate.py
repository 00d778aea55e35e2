"""`sandforge generate`: run the generate_batch flow with progress and a funnel."""

from __future__ import annotations

import argparse
import os
from typing import Any

from rich.console import Console
from rich.table import Table

from sandforge.commands import arguments
from sandforge.commands.output import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_OK,
    console,
    fail,
    positive_int,
    prefect_defaults,
    print_json,
)
from sandforge.tiers import TIERS

SANDBOX_CHOICES = ("auto", "bubblewrap", "docker", "rlimit")  # validators.sandbox.backends


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def cmd_generate(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from sandforge.agents.providers import ProviderError, get_provider
    from sandforge.seeds.card import SeedCardError
    from sandforge.seeds.registry import ContaminationError, select
    from sandforge.validators.sandbox import ENV_VAR, SandboxConfigError, sandbox_backend

    if args.sandbox:
        os.environ[ENV_VAR] = args.sandbox  # the flow's sandboxed stages read it
    try:  # fail on bad input before Prefect spends seconds starting
        select(args.seeds, strict=args.strict, warn=False)
        get_provider(args.provider, args.model)
        sandbox_backend()  # fails closed: no isolating backend and no explicit rlimit
    except (SeedCardError, ContaminationError, ProviderError, SandboxConfigError) as exc:
        fail(exc)
        return EXIT_BAD_INPUT
    if not _signing_key_ready():
        return EXIT_BAD_INPUT
    prefect_defaults()
    from prefect.task_runners import ThreadPoolTaskRunner

    from sandforge.flows.generate_batch import generate_batch
    from sandforge.progress import listen

    flow = generate_batch.with_options(
        task_runner=ThreadPoolTaskRunner(max_workers=args.concurrency)
    )
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, disable=args.json) as progress:
        bars: dict[str, Any] = {}

        def on_event(event: dict[str, Any]) -> None:
            if event["kind"] == "start":
                bars["accepted"] = progress.add_task("accepted", total=event["tasks_wanted"])
                bars["candidates"] = progress.add_task("candidates", total=None)
            elif event["kind"] == "candidate":
                progress.advance(bars["candidates"])
                if event["accepted"]:
                    progress.advance(bars["accepted"])

        with listen(on_event):
            summary = flow(
                seeds=args.seeds,
                per_seed=args.per_seed,
                rng_seed=args.seed,
                store=args.store,
                provider=args.provider,
                model=args.model,
                budget_usd=args.budget,
                max_attempts_per_seed=args.max_attempts,
                strict=args.strict,
                difficulty=args.difficulty,
            )
    if args.json:
        print_json(summary)
    else:
        _print_funnel(summary)
    return EXIT_FAILED if summary["short_of_quota"] else EXIT_OK


def _signing_key_ready() -> bool:
    """Bundles are signed: load the key, or create the local one with a one-line notice."""
    from sandforge.storage.signing import SigningKeyError, load_signer

    try:
        signer, created = load_signer(create=True)
    except (SigningKeyError, OSError) as exc:
        fail(exc)
        return False
    assert signer is not None
    if created:
        console.print(
            f"[yellow]note:[/yellow] created signing key {signer.source} (key id "
            f"{signer.key_id}); bundles are signed with it and trusted on this machine. "
            f"Elsewhere: --trust {signer.public_text}"
        )
    return True


def _print_funnel(summary: dict[str, Any]) -> None:
    out = Console()
    table = Table(title=f"{summary['accepted']} task(s) accepted")
    for column in ("task", "seed", "metric", *TIERS):
        table.add_column(column)
    for t in summary["tasks"]:
        th = t["thresholds"]
        table.add_row(
            f"{t['task_id']}@{t['version']}",
            t["seed_id"],
            t["metric"],
            *(f"{th[k]:.4g}" for k in TIERS),
        )
    out.print(table)
    out.print(
        f"funnel: {summary['candidates']} candidates -> {summary['accepted']} accepted "
        f"({summary['acceptance_rate']:.0%}), {summary['rejected']} rejected"
    )
    if (llm := summary.get("llm")) and llm["total"]["calls"]:
        total, each = llm["total"], llm["per_accepted_task_usd"]
        out.print(
            f"LLM: {total['calls']} calls, {total['input_tokens']} input + "
            f"{total['cache_read_input_tokens']} cached + {total['output_tokens']} output "
            f"tokens, ${total['cost_usd']:.4f}"
            + (f" (${each:.4f} per accepted task)" if each is not None else "")
        )
        for role, figures in llm["by_role"].items():
            speed = figures.get("output_tokens_per_s")
            out.print(
                f"  {role}: {figures['calls']} calls, {figures['input_tokens']} input + "
                f"{figures['output_tokens']} output tokens, {figures.get('seconds', 0):.1f} s"
                + (f", {speed:g} output tokens/s" if speed else ""),
                highlight=False,
            )
    if summary.get("stopped") == "budget":
        out.print("[yellow]stopped: the --budget was reached; accepted tasks are kept[/yellow]")
    for stage, reasons in summary["rejections_by_stage"].items():
        for reason, count in reasons.items():
            out.print(f"  rejected at {stage}: {reason} x{count}")
    if summary["short_of_quota"]:
        out.print(f"[yellow]short of quota: {summary['short_of_quota']}[/yellow]")
    if summary.get("report"):
        out.print(f"batch report: {summary['report']}")


def register(commands: argparse._SubParsersAction) -> None:
    generate = commands.add_parser("generate", help="generate a batch of verified tasks")
    generate.add_argument("--seeds", default="all", help="'all' or comma-separated seed ids")
    generate.add_argument(
        "--per-seed",
        type=positive_int,
        default=3,
        help="accepted tasks wanted per seed (default 3)",
    )
    generate.add_argument("--seed", type=int, default=0, help="batch RNG seed (default 0)")
    generate.add_argument(
        "--provider",
        default=os.environ.get("SANDFORGE_PROVIDER", "offline"),
        help="who plays the roles: offline (default), anthropic, openai, openai-compatible "
        "(default: $SANDFORGE_PROVIDER)",
    )
    generate.add_argument(
        "--model",
        default=os.environ.get("SANDFORGE_MODEL") or None,
        help="the provider's model (default: $SANDFORGE_MODEL, else the provider's default)",
    )
    generate.add_argument(
        "--budget",
        type=positive_float,
        default=None,
        metavar="USD",
        help="stop drawing candidates once LLM calls cost this much; accepted tasks are kept",
    )
    arguments.add_store_option(generate)
    generate.add_argument(
        "--sandbox",
        choices=SANDBOX_CHOICES,
        default=None,
        help="where baselines run: auto (bubblewrap, else docker; refuses when neither works), "
        "bubblewrap, docker, or rlimit (resource limits only: NOT isolated) "
        "(default: $SANDFORGE_SANDBOX, else auto)",
    )
    generate.add_argument(
        "--max-attempts",
        type=positive_int,
        default=None,
        help="candidate cap per seed (3 x per-seed)",
    )
    generate.add_argument(
        "--concurrency", type=positive_int, default=2, help="candidates built at once (default 2)"
    )
    generate.add_argument(
        "--strict", action="store_true", help="refuse MLE-bench-lite seeds instead of warning"
    )
    generate.add_argument(
        "--difficulty",
        choices=("easy", "medium", "hard"),
        default="medium",
        help="moves signal strength, noise and quirk count (default medium)",
    )
    generate.add_argument("--json", action="store_true", help="print the batch summary as JSON")
    generate.set_defaults(handler=cmd_generate)
