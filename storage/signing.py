"""Signed manifests: who published a bundle, checked before anyone consumes it.

The content hash says a bundle is intact; it says nothing about who made it, since anyone
with write access to a store can recompute it. So every publish signs the manifest with an
Ed25519 key (`cryptography`), and every consumer (`pull` and so `export`, `inspect`, `grade`)
checks that signature against public keys it trusts.

The signature is a manifest field, `signature`, outside the content hash (like `version` and
`created_at`): the content hash keeps meaning "these files and this recipe", so regenerating a
bundle still reproduces it, while the signature covers the whole manifest as stored, version
and created_at included, so a signed bundle cannot be renumbered (rolled back) or redated. It
lives in manifest.json rather than a file beside it so that publishing stays one atomic step:
a visible bundle always carries its signature (S3: manifest.json is created create-only).

    "signature": {"algorithm": "ed25519", "key_id": "<16 hex>", "public_key": "ed25519:<b64>",
                  "value": "<b64 of 64 bytes>"}

The signed message is PREFIX + canonical_json(manifest without `signature`). Ed25519 is
deterministic, so the same cards, code, seed and key give byte-identical bundles. The embedded
public key only lets anyone check a signature is self-consistent (the catalog records that
signer); trust comes from the verifier's own list of keys, never from the bundle.

Keys: `sandforge keys init` writes a PEM private key, mode 0600, to SANDFORGE_SIGNING_KEY_FILE
(default .sandforge/keys/signing.pem); SANDFORGE_SIGNING_KEY may hold the PEM text instead.
With neither, the first publish creates the file (the one-config-free path) and logs so. The
private key never appears in a bundle, a log or an error message. Trusted keys: `--trust`,
SANDFORGE_TRUSTED_KEYS, plus the local signing key's own public key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
import re
import stat
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sandforge.storage.bundle import BundleError, canonical_json

ALGORITHM = "ed25519"
FIELD = "signature"
PREFIX = b"sandforge-manifest-signature/1\n"  # a signature over a manifest is only that
KEY_ENV = "SANDFORGE_SIGNING_KEY"
KEY_FILE_ENV = "SANDFORGE_SIGNING_KEY_FILE"
TRUSTED_ENV = "SANDFORGE_TRUSTED_KEYS"
DEFAULT_KEY_FILE = Path(".sandforge/keys/signing.pem")
PUBLIC_PREFIX = "ed25519:"
KEY_ID_PATTERN = r"[0-9a-f]{16}"
ALLOW_FLAG = "--allow-unsigned"
log = logging.getLogger(__name__)


class SigningKeyError(ValueError):
    """A key given to sandforge is unusable: missing, malformed or too widely readable."""


class SignatureError(BundleError):
    """A bundle's signature is missing, invalid, or made by a key nobody trusts."""


class UnsignedBundleError(SignatureError):
    """A bundle without a signature: published before signing existed, or stripped."""


# -- keys -------------------------------------------------------------------------------------


def public_text(key: Ed25519PublicKey) -> str:
    """`ed25519:<base64 of the 32 raw bytes>`: one token, fit for flags and env lists."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return PUBLIC_PREFIX + base64.b64encode(raw).decode()


def key_id(key: Ed25519PublicKey) -> str:
    """First 16 hex digits of the sha256 of the raw public key."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


@dataclass(frozen=True)
class Signer:
    """A private key that signs manifests. Its repr never shows the key."""

    key: Ed25519PrivateKey = field(repr=False)
    source: str  # where it came from, for messages (a path or the env var's name)

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.key.public_key()

    @property
    def key_id(self) -> str:
        return key_id(self.public_key)

    @property
    def public_text(self) -> str:
        return public_text(self.public_key)

    def sign(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """The manifest (with its version) plus its signature; replaces any earlier one."""
        unsigned = {k: v for k, v in manifest.items() if k != FIELD}
        value = self.key.sign(PREFIX + canonical_json(unsigned))
        return {
            **unsigned,
            FIELD: {
                "algorithm": ALGORITHM,
                "key_id": self.key_id,
                "public_key": self.public_text,
                "value": base64.b64encode(value).decode(),
            },
        }


def key_file() -> Path:
    return Path(os.environ.get(KEY_FILE_ENV) or DEFAULT_KEY_FILE)


def load_signer(*, create: bool = False) -> tuple[Signer | None, bool]:
    """(the signing key in effect, whether it was just created).

    SANDFORGE_SIGNING_KEY (PEM text) wins; else the key file. A missing file is created when
    `create` is set, else (None, False)."""
    if os.environ.get(KEY_ENV):
        return Signer(_private_from_pem(os.environ[KEY_ENV].encode(), KEY_ENV), KEY_ENV), False
    path = key_file()
    created = create and not path.exists() and write_new_key(path)
    if not path.exists():
        return None, False
    return read_key_file(path), created


def default_signer() -> Signer:
    """The key publishes sign with, created on first use (see the module docstring)."""
    signer, created = load_signer(create=True)
    assert signer is not None
    if created:
        log.warning(
            "created signing key %s (key id %s): bundles are signed with it and trusted on "
            "this machine; consumers elsewhere need `--trust %s`",
            signer.source,
            signer.key_id,
            signer.public_text,
        )
    return signer


def write_new_key(path: Path) -> bool:
    """Create a fresh private key at `path` (mode 0600, folder 0700); False if another
    process created it first. Written to a temporary file and linked into place, so a
    reader never sees half a key and an existing key is never overwritten."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # mode 0600
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
        os.link(tmp, path)
    except FileExistsError:
        return False
    finally:
        Path(tmp).unlink(missing_ok=True)
    return True


def read_key_file(path: Path) -> Signer:
    try:
        mode = path.stat().st_mode
        data = path.read_bytes()
    except OSError as exc:
        raise SigningKeyError(f"{path}: cannot read the signing key ({exc.strerror})") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SigningKeyError(
            f"{path}: permissions {stat.S_IMODE(mode):04o} let others read the signing key; "
            f"run `chmod 600 {path}`"
        )
    return Signer(_private_from_pem(data, str(path)), str(path))


def _private_from_pem(data: bytes, source: str) -> Ed25519PrivateKey:
    """Never quotes `data`: it is a secret, even when malformed."""
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, binascii.Error):
        key = None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"{source}: not an unencrypted Ed25519 private key in PEM")
    return key


def parse_public_key(text: str, source: str = "key") -> Ed25519PublicKey:
    """A public key given by a user: `ed25519:<base64>`, PEM, or a file holding either."""
    text = text.strip()
    if not text.startswith(PUBLIC_PREFIX) and "-----BEGIN" not in text:
        path = Path(text)
        try:
            text = path.read_text(encoding="utf-8").strip() if path.is_file() else ""
        except (OSError, UnicodeDecodeError):
            text = ""
        if not text:
            raise SigningKeyError(
                f"{source}: {_quote(str(path))} is neither a public key (ed25519:...) nor a "
                "readable key file"
            )
        source = f"{source} {path}"
    return public_key_from_text(text, source)


def public_key_from_text(text: str, source: str) -> Ed25519PublicKey:
    """`ed25519:<base64>` or a PEM public key; never a path (bundles supply this text)."""
    if "PRIVATE KEY" in text:
        raise SigningKeyError(
            f"{source}: holds a private key; trust its public key instead "
            "(`sandforge keys show` prints it)"
        )
    if text.startswith(PUBLIC_PREFIX):
        try:
            raw = base64.b64decode(text.removeprefix(PUBLIC_PREFIX), validate=True)
            return Ed25519PublicKey.from_public_bytes(raw)
        except (ValueError, binascii.Error):
            raise SigningKeyError(f"{source}: {_quote(text)} is not an Ed25519 key") from None
    try:
        key = serialization.load_pem_public_key(text.encode())
    except ValueError:
        key = None
    if not isinstance(key, Ed25519PublicKey):
        raise SigningKeyError(f"{source}: not an Ed25519 public key (ed25519:... or PEM)")
    return key


def _quote(text: str) -> str:
    """Public keys and paths are not secrets, but messages stay one short line."""
    return repr(text if len(text) <= 80 else text[:77] + "...")


# -- trust and verification ---------------------------------------------------------------------


@dataclass(frozen=True)
class Trust:
    """Which signers a consumer accepts, and whether unsigned bundles pass too."""

    keys: dict[str, Ed25519PublicKey] = field(default_factory=dict)  # key id -> key
    allow_unsigned: bool = False

    @classmethod
    def default(cls, extra: Iterable[str] = (), *, allow_unsigned: bool = False) -> Trust:
        """`extra` keys (or key files), SANDFORGE_TRUSTED_KEYS (comma- or space-separated),
        and the local signing key's public half when there is one (never creating it)."""
        keys = {}
        for item in extra:
            key = parse_public_key(item, "--trust")
            keys[key_id(key)] = key
        for item in re.split(r"[,\s]+", os.environ.get(TRUSTED_ENV, "")):
            if item:
                key = parse_public_key(item, TRUSTED_ENV)
                keys[key_id(key)] = key
        local, _ = load_signer()
        if local is not None:
            keys[local.key_id] = local.public_key
        return cls(keys, allow_unsigned)

    def check(self, manifest: dict[str, Any]) -> str | None:
        """The trusted signer's key id, or None for an unsigned bundle that is allowed.
        Raises SignatureError (UnsignedBundleError when there is no signature)."""
        if manifest.get(FIELD) is None:
            if self.allow_unsigned:
                return None
            raise UnsignedBundleError(
                "unsigned bundle (published before sandforge signed bundles, or its signature "
                f"was stripped): pass {ALLOW_FLAG} to accept it unauthenticated"
            )
        only_unsigned = f"{ALLOW_FLAG}, which accepts only bundles without a signature"
        try:
            signer = signed_by(manifest)
        except SignatureError as exc:
            raise SignatureError(f"{exc}; refused even with {only_unsigned}") from None
        if signer not in self.keys:
            raise SignatureError(
                f"signed by key {signer}, which is not trusted: add its public key with "
                f"--trust or {TRUSTED_ENV} (refused even with {only_unsigned})"
            )
        return signer


def signed_by(manifest: dict[str, Any]) -> str:
    """The key id whose signature the manifest carries, after checking that signature under
    the embedded public key; SignatureError if it is malformed, spoofed or does not match.
    Says who signed, not whether to trust them (Trust.check does that)."""
    block = manifest.get(FIELD)
    if not isinstance(block, dict) or block.get("algorithm") != ALGORITHM:
        raise SignatureError(f"malformed signature: expected an {ALGORITHM} signature block")
    claimed = block.get("key_id")
    if not isinstance(claimed, str) or not re.fullmatch(KEY_ID_PATTERN, claimed):
        raise SignatureError("malformed signature: bad key_id")
    try:
        public = public_key_from_text(str(block.get("public_key")), "signature")
        value = base64.b64decode(str(block.get("value")), validate=True)
    except (SigningKeyError, binascii.Error, ValueError):
        raise SignatureError("malformed signature: bad public_key or value") from None
    if key_id(public) != claimed:
        raise SignatureError(
            f"signature claims key id {claimed} but carries another key's public half "
            "(spoofed key id)"
        )
    unsigned = {k: v for k, v in manifest.items() if k != FIELD}
    try:
        public.verify(value, PREFIX + canonical_json(unsigned))
    except InvalidSignature:
        raise SignatureError(
            f"signature by key {claimed} does not match this manifest: it was changed after "
            "signing (forged or tampered)"
        ) from None
    return claimed


def signer_of(manifest: dict[str, Any]) -> str | None:
    """For the catalog: the key id of a valid signature, None when unsigned."""
    return None if manifest.get(FIELD) is None else signed_by(manifest)


def resolve(trust: Trust | None) -> Trust:
    return trust if trust is not None else Trust.default()
