"""`sandforge keys init|show`: the Ed25519 key publishing signs bundles with, and the shared
`--trust` / `--allow-unsigned` flags of every command that consumes bundles."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from sandforge.commands.output import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_OK,
    console,
    fail,
    print_json,
)


def cmd_keys_init(args: argparse.Namespace) -> int:
    from sandforge.storage.signing import SigningKeyError, key_file, read_key_file, write_new_key

    path = Path(args.out) if args.out else key_file()
    if path.exists():
        fail(f"{path} already exists: keep using it, or move it away first (it signed bundles)")
        return EXIT_BAD_INPUT
    try:
        created = write_new_key(path)
    except OSError as exc:
        fail(f"{path}: cannot write the key ({exc.strerror})")
        return EXIT_FAILED
    if not created:
        fail(f"{path} was created meanwhile by another process")
        return EXIT_BAD_INPUT
    try:
        signer = read_key_file(path)
    except SigningKeyError as exc:  # e.g. a folder whose ACLs widen the file's mode
        fail(exc)
        return EXIT_FAILED
    _print_key(signer, args.json, f"created {path} (mode 0600, key id {signer.key_id})")
    if not args.json:
        if args.out and Path(args.out) != key_file():
            console.print(f"publish with it: export SANDFORGE_SIGNING_KEY_FILE={path}")
        console.print(f"consumers elsewhere trust it with: --trust {signer.public_text}")
    return EXIT_OK


def cmd_keys_show(args: argparse.Namespace) -> int:
    from sandforge.storage.signing import KEY_ENV, SigningKeyError, load_signer, read_key_file

    try:
        signer = read_key_file(Path(args.key)) if args.key else load_signer()[0]
    except SigningKeyError as exc:
        fail(exc)
        return EXIT_BAD_INPUT
    if signer is None:
        fail(f"no signing key: run `sandforge keys init` (or set {KEY_ENV})")
        return EXIT_FAILED
    _print_key(signer, args.json, f"key id {signer.key_id} ({signer.source})")
    return EXIT_OK


def _print_key(signer: Any, as_json: bool, headline: str) -> None:
    """The key as JSON, or a headline and the public key line consumers paste into --trust."""
    if as_json:
        print_json(
            {"key_id": signer.key_id, "public_key": signer.public_text, "source": signer.source}
        )
        return
    console.print(headline)
    print(signer.public_text)


# -- what consumers share ------------------------------------------------------------------------


def add_trust_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--trust",
        action="append",
        default=[],
        metavar="KEY_OR_FILE",
        help="accept bundles signed by this public key (ed25519:..., or a file holding it); "
        "repeatable. Also trusted: $SANDFORGE_TRUSTED_KEYS and the local signing key",
    )
    parser.add_argument(
        "--allow-unsigned",
        action="store_true",
        help="accept bundles that carry no signature (published before signing existed); "
        "their files are still checked against the manifest",
    )


def trust_from(args: argparse.Namespace) -> Any:
    """The Trust the flags ask for, or None after saying why a key is unusable (exit 2)."""
    from sandforge.storage.signing import SigningKeyError, Trust

    try:
        return Trust.default(args.trust, allow_unsigned=args.allow_unsigned)
    except SigningKeyError as exc:
        fail(exc)
        return None


def register(commands: argparse._SubParsersAction) -> None:
    keys = commands.add_parser(
        "keys",
        help="the Ed25519 key that signs published bundles",
        description="Publishing signs every manifest; pull, export, inspect and grade accept "
        "only bundles signed by a trusted key. The key lives in $SANDFORGE_SIGNING_KEY_FILE "
        "(default .sandforge/keys/signing.pem), or its PEM text in $SANDFORGE_SIGNING_KEY.",
    )
    actions = keys.add_subparsers(dest="keys_command", required=True)
    init = actions.add_parser("init", help="create a private key (mode 0600)")
    init.add_argument("--out", help="key file (default: the one publishing uses)")
    init.add_argument("--json", action="store_true")
    init.set_defaults(handler=cmd_keys_init)
    show = actions.add_parser("show", help="print the public key and key id (never the key)")
    show.add_argument("--key", help="key file (default: the one publishing uses)")
    show.add_argument("--json", action="store_true")
    show.set_defaults(handler=cmd_keys_show)
