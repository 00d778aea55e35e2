"""Lock down the development S3 server's internal ports (storage/s3_server.py).

`weed mini` runs master, volume server, filer, admin and S3 gateway, each with an HTTP and a
gRPC port on 127.0.0.1. Out of the box every one of them except S3 answers anyone on the
machine: the filer's HTTP port reads and writes every object, and the master's
`/col/delete?collection=<bucket>` deletes a bucket's data, with or without JWT keys. So:

- every HTTP and gRPC port except S3 demands mutual TLS: a client certificate signed by a CA
  made for this data directory (`[grpc.*]` and `[https.*]` of weed's security.toml). The CA's
  private key is thrown away once it signed the one node certificate, so nobody can mint
  another; the node certificate and key sit in `<data_dir>/tls/` (mode 0600, folder 0700)
  and weed's components present them to each other;
- volume and filer also check JWTs (`[jwt.*signing*]`), which covers weed's local
  filer.sock, a Unix socket that speaks plain HTTP (inside the 0700 data directory);
- the admin UI has a random password, on top of mutual TLS;
- S3 stays plain HTTP, authenticated by the SigV4 keys in s3.json.

security.toml (mode 0600) is written again on every start with fresh JWT keys and password:
they only link the components of one process.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import secrets
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

TLS_DIR = "tls"
SECURITY_FILE = "security.toml"  # read by weed from its -config_dir
GRPC_COMPONENTS = ("master", "volume", "filer", "s3", "admin", "worker", "client")
HTTPS_COMPONENTS = ("master", "volume", "filer", "admin")
JWT_SECTIONS = ("jwt.signing", "jwt.signing.read", "jwt.filer_signing", "jwt.filer_signing.read")
VALID_DAYS = 3650
BOTH_WAYS = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]  # serves and dials
HOST = "127.0.0.1"


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    cert: Path
    key: Path


def tls_files(data_dir: Path) -> TlsFiles:
    folder = data_dir / TLS_DIR
    return TlsFiles(folder / "ca.crt", folder / "node.crt", folder / "node.key")


def ensure_tls(data_dir: Path) -> TlsFiles:
    """The data directory's CA and node certificate, made once (see the module docstring)."""
    files = tls_files(data_dir)
    if files.ca.is_file() and files.cert.is_file() and files.key.is_file():
        return files
    files.ca.parent.mkdir(mode=0o700, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"sandforge dev CA {now:%F}")])
    ca = (
        _builder(ca_name, ca_name, ca_key.public_key(), now)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(cert_sign=True), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    node_key = ec.generate_private_key(ec.SECP256R1())
    node_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sandforge-dev-weed")])
    node = (
        _builder(node_name, ca_name, node_key.public_key(), now)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(cert_sign=False), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(BOTH_WAYS),
            critical=False,
        )
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(HOST))]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    key_bytes = node_key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    write_private(files.key, key_bytes)
    write_private(files.cert, node.public_bytes(pem))
    write_private(files.ca, ca.public_bytes(pem))  # written last: marks the set complete
    return files


def write_security_config(config_dir: Path, files: TlsFiles) -> None:
    """weed's security.toml: mutual TLS on every internal port, JWTs, an admin password."""
    lines = [f"[{section}]\nkey = {_q(secrets.token_hex(32))}\n" for section in JWT_SECTIONS]
    lines.append("[access]\nui = false\n")
    lines.append("[filer.expose_directory_metadata]\nenabled = false\n")
    lines.append(f"[grpc]\nca = {_q(files.ca)}\n")
    for component in GRPC_COMPONENTS:
        lines.append(f"[grpc.{component}]\ncert = {_q(files.cert)}\nkey = {_q(files.key)}\n")
    lines.append(
        f"[https.client]\nenabled = true\ncert = {_q(files.cert)}\nkey = {_q(files.key)}\n"
        f"ca = {_q(files.ca)}\n"
    )
    for component in HTTPS_COMPONENTS:  # `ca` set: clients must present a certificate of it
        lines.append(
            f"[https.{component}]\ncert = {_q(files.cert)}\nkey = {_q(files.key)}\n"
            f"ca = {_q(files.ca)}\n"
        )
    lines.append(f'[admin]\nuser = "admin"\npassword = {_q(secrets.token_urlsafe(24))}\n')
    write_private(config_dir / SECURITY_FILE, "\n".join(lines).encode())


def client_context(data_dir: Path) -> ssl.SSLContext:
    """TLS as weed's own components speak it: for the owner's health checks (and tests)."""
    files = tls_files(data_dir)
    context = ssl.create_default_context(cafile=str(files.ca))
    context.load_cert_chain(str(files.cert), str(files.key))
    return context


def write_private(path: Path, data: bytes) -> None:
    """Replace `path` with `data`, readable by its owner only from the first byte on."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey, now: dt.datetime
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
    )


def _usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _q(value: object) -> str:
    """A TOML basic string (JSON's escapes are TOML's)."""
    return json.dumps(str(value))
