"""`sandforge inspect|export|grade|regenerate`: work with published bundles."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from sandforge.commands import arguments, output
from sandforge.commands.keys import add_trust_arguments, trust_from
from sandforge.commands.output import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, fail, print_json
from sandforge.commands.storage import LAYOUT_NAMES, run_pull


def authenticated(bundle: Path, trust: Any) -> tuple[dict[str, Any], str | None] | None:
    """(manifest, signer key id) of a bundle folder whose files and signature verify, or
    None after saying why not (a forged or unsigned bundle is never read any further)."""
    from sandforge.storage.bundle import BundleError, verify_bundle
    from sandforge.storage.signing import SignatureError

    try:
        manifest = verify_bundle(bundle)
        return manifest, trust.check(manifest)
    except SignatureError as exc:
        fail(f"{bundle}: {exc}", label="refused:")
    except BundleError as exc:
        fail(exc, label="corrupted bundle:")
    return None


def cmd_inspect(args: argparse.Namespace) -> int:
    trust = trust_from(args)
    if trust is None:
        return EXIT_BAD_INPUT
    checked = authenticated(Path(args.bundle), trust)
    if checked is None:
        return EXIT_FAILED
    manifest, signer = checked
    if args.json:
        print_json(manifest)
        return EXIT_OK
    out = Console()
    origin = f"signed by {signer}" if signer else "UNSIGNED, accepted with --allow-unsigned"
    out.print(f"[bold]{manifest['task_id']}[/bold] v{manifest['version']}  (verified, {origin})")
    out.print(f"seed {manifest['seed_id']}, domain {manifest['domain']}, {manifest['task_type']}")
    direction = "lower" if manifest["is_lower_better"] else "higher"
    out.print(f"metric {manifest['metric']} ({direction} is better)")
    table = Table("baseline or tier", "score")
    rows = [(name, score) for name, score in manifest["baseline_scores"].items()]
    rows += [(f"[bold]{name}[/bold]", value) for name, value in manifest["thresholds"].items()]
    sign = 1 if manifest["is_lower_better"] else -1
    for name, value in sorted(rows, key=lambda row: sign * row[1]):  # best first
        table.add_row(name, f"{value:.4g}")
    out.print(table)
    out.print(f"content hash {manifest['content_hash']}, created {manifest['created_at']}")
    for path, entry in manifest["files"].items():
        out.print(f"  {path}  {entry['bytes']} B  sha256 {entry['sha256'][:12]}")
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    options = {}
    if args.layout == "sandmle":
        options = {"sample_seed": args.sample_seed, "answers_in_public": args.answers_in_public}
    elif args.answers_in_public:
        fail("--answers-in-public applies to --layout sandmle only")
        return EXIT_BAD_INPUT
    store, trust = output.open_store_arg(args.store, must_exist=True), trust_from(args)
    if store is None or trust is None:
        return EXIT_BAD_INPUT
    return run_pull(store, args, [], None, trust, **options)


def cmd_grade(args: argparse.Namespace) -> int:
    from sandforge.storage.bundle import BundleError
    from sandforge.storage.consumer_grades import grade

    trust = trust_from(args)
    if trust is None:
        return EXIT_BAD_INPUT
    if authenticated(Path(args.bundle), trust) is None:
        return EXIT_FAILED
    try:
        graded = grade(Path(args.bundle), Path(args.submission))
    except BundleError as exc:
        fail(exc)
        return EXIT_FAILED
    report = graded.report
    if graded.problem:
        fail(graded.problem)
    if args.json:
        print_json(report)
    else:
        out = Console()
        for key, value in report.items():
            out.print(f"{key:24} {value}")
    return EXIT_OK if report["valid_submission"] else EXIT_FAILED


def cmd_regenerate(args: argparse.Namespace) -> int:
    from sandforge.regenerate import regenerate
    from sandforge.storage.bundle import BundleError

    try:
        result = regenerate(Path(args.bundle))
    except BundleError as exc:
        fail(exc)
        return EXIT_BAD_INPUT
    if args.json:
        print_json({**result.__dict__, "identical": result.identical})
    elif result.identical:
        output.console.print(f"[green]identical[/green] {result.task_id} {result.actual_hash}")
    else:
        output.console.print(
            f"[red]differs[/red] {result.task_id}: expected {result.expected_hash}, got "
            f"{result.actual_hash or result.rejection}; files: {result.differing_files}"
        )
    return EXIT_OK if result.identical else EXIT_FAILED


def _bundle_command(
    commands: argparse._SubParsersAction, name: str, handler: Any, json_help: str, **texts: str
) -> argparse.ArgumentParser:
    """A command on one bundle folder: the folder first, --json, the handler."""
    parser = commands.add_parser(name, **texts)
    parser.add_argument(
        "bundle", type=arguments.bundle_folder, help="bundle folder (<store>/<task_id>/<version>)"
    )
    parser.add_argument("--json", action="store_true", help=json_help)
    parser.set_defaults(handler=handler)
    return parser


def register(commands: argparse._SubParsersAction) -> None:
    inspect = _bundle_command(
        commands,
        "inspect",
        cmd_inspect,
        "print the manifest as JSON",
        help="verify and describe one bundle",
    )
    add_trust_arguments(inspect)

    export = commands.add_parser(
        "export",
        help="export every task's newest version for a trainer or benchmark",
        description="Pull every task's newest version, verified, in a consumer's layout "
        "(CONTRACTS.md). Tasks already exported unchanged are skipped.",
    )
    arguments.add_store_option(export)
    export.add_argument("--layout", choices=LAYOUT_NAMES, default="sandmle")
    export.add_argument("--out", required=True, type=arguments.folder, help="output folder")
    export.add_argument("--sample-seed", type=int, default=0, help="SandMLE 64-id sample seed")
    export.add_argument(
        "--answers-in-public",
        action="store_true",
        help="SandMLE's own layout: answer.csv in prepared/public/, visible to the agent",
    )
    export.add_argument(
        "--workers", type=output.positive_int, default=16, help="parallel downloads"
    )
    export.add_argument("--json", action="store_true")
    add_trust_arguments(export)
    export.set_defaults(handler=cmd_export)

    grade = _bundle_command(
        commands,
        "grade",
        cmd_grade,
        "print the report as JSON",
        help="grade a submission like MLE-bench (plus SandMLE's reward)",
        description="Score SUBMISSION against a bundle folder and print MLE-bench's report "
        "fields, sandmle_reward and mledojo_position_score. Exit 1 if the submission is "
        "missing or invalid.",
    )
    grade.add_argument("submission", help="submission CSV")
    add_trust_arguments(grade)

    _bundle_command(
        commands,
        "regenerate",
        cmd_regenerate,
        "print the comparison as JSON",
        help="rebuild a bundle and compare its hash",
    )
