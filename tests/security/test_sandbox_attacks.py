"""Attacks on the sandbox, each run for real under every backend that claims to contain it.

Untrusted code (a baseline, an agent's solution) tries what issue 12 found to work against the
old sandbox: the network, the docker socket, secrets on the host (/etc/shadow, S3 keys,
SeaweedFS volumes, a user's ~/.aws and ~/.ssh), the parent's environment through /proc, the
venv, the parent process itself, processes that outlive the run, whole-run memory, the disk,
outputs that are links or FIFOs, and the syscalls an escape starts from. Each test asserts
that the attack was contained, and, where it is safe to, that the same attack works outside
the sandbox, so a test cannot pass because the attack was broken.

Backends: bubblewrap and docker claim all of it ("isolated"); rlimit (resource limits only,
NOT isolated) claims only the resource attacks ("any backend"); a few claims are bubblewrap's
seccomp filter alone. A backend that cannot run here is skipped with the reason, except docker
when SANDFORGE_REQUIRE_DOCKER=1: then it fails. Secrets live under /var/tmp, not /tmp, since
every backend hides the host's /tmp anyway and a test there would prove nothing. No packet
leaves this machine: "external" reachability is checked with a UDP connect(), which sends
nothing, and TCP only ever targets servers this test starts on this host.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sandforge.storage import s3_server
from sandforge.validators.sandbox import (
    ENV_VAR,
    ISOLATING,
    PYTHON,
    SandboxConfigError,
    SandboxResult,
    cgroup,
    run_sandboxed,
    sandbox_backend,
)

pytestmark = pytest.mark.slow

REQUIRE_DOCKER = "SANDFORGE_REQUIRE_DOCKER"
ALL_BACKENDS = (*ISOLATING, "rlimit")
X86_64 = platform.machine() == "x86_64"
# x86_64 syscall numbers for attacks glibc has no wrapper for.
NR = {"keyctl": 250, "add_key": 248, "bpf": 321, "perf_event_open": 298, "pivot_root": 155}
NR |= {"clone3": 435, "io_uring_setup": 425, "userfaultfd": 323, "process_vm_readv": 310}
CLONE_NEWUSER, CLONE_NEWNS, CLONE_NEWNET = 0x10000000, 0x00020000, 0x40000000
SETTLE_S = 30  # how long a killed process or container may take to disappear

# Runs first in every attack: helpers to call syscalls and report one JSON object.
PRELUDE = """\
import ctypes, errno, json, os, socket, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def syscall(nr, *args):
    '''"ok" if the syscall succeeded, else its errno name.'''
    ctypes.set_errno(0)
    result = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) for a in args])
    return "ok" if result >= 0 else errno.errorcode.get(ctypes.get_errno(), "?")
def call(result):
    return "ok" if result >= 0 else errno.errorcode.get(ctypes.get_errno(), "?")
def attempt(action):
    '''"ok" if action() raised nothing, else the errno name (or the exception's type).'''
    try:
        action()
        return "ok"
    except OSError as exc:
        return errno.errorcode.get(exc.errno, type(exc).__name__)
def report(**fields):
    print("REPORT " + json.dumps(fields), flush=True)
"""


@dataclass(frozen=True)
class Outcome:
    report: dict[str, Any]
    result: SandboxResult


# --- backends ------------------------------------------------------------------------------


def use_backend(name: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Force the backend; skip (or, for docker when required, fail) if it cannot run here."""
    monkeypatch.setenv(ENV_VAR, name)
    try:
        sandbox_backend()
    except SandboxConfigError as exc:
        if name == "docker" and os.environ.get(REQUIRE_DOCKER) == "1":
            pytest.fail(f"{REQUIRE_DOCKER}=1 but the docker backend is unusable: {exc}")
        pytest.skip(f"{name} is unusable on this host: {exc}")
    return name


@pytest.fixture(params=ISOLATING)
def isolated(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    return use_backend(request.param, monkeypatch)


@pytest.fixture(params=ALL_BACKENDS)
def any_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    return use_backend(request.param, monkeypatch)


@pytest.fixture
def bubblewrap(monkeypatch: pytest.MonkeyPatch) -> str:
    return use_backend("bubblewrap", monkeypatch)


def needs_cgroup(backend: str) -> None:
    """Whole-run limits on the host backends come from a cgroup (docker has its own)."""
    if backend != "docker" and cgroup._layout() is None:
        pytest.skip("no writable cgroup here: the documented per-process fallback applies")


def needs_tmpfs() -> None:
    if os.geteuid() != 0:
        pytest.skip("task folders are size-limited tmpfs mounts only as root")


def needs_x86_64() -> None:
    if not X86_64:
        pytest.skip("syscall numbers here are x86_64's")


# --- running attacks -----------------------------------------------------------------------


def attack(body: str, workdir: Path, args: Any = None, **options: Any) -> Outcome:
    """Run PRELUDE + body in the sandbox; body sees ARGS (JSON-able) and calls report()."""
    code = PRELUDE + f"ARGS = json.loads({json.dumps(json.dumps(args))})\n"
    code += textwrap.dedent(body)
    options.setdefault("timeout_s", 60)
    result = run_sandboxed([PYTHON, "-c", code], workdir=workdir, **options)
    lines = [line for line in result.stdout.splitlines() if line.startswith("REPORT ")]
    assert lines, f"the attack reported nothing: {result}"
    return Outcome(json.loads(lines[-1].removeprefix("REPORT ")), result)


def on_host(body: str, args: Any = None, env: dict[str, str] | None = None) -> dict[str, Any]:
    """The same attack as a plain process of this host: the control that it works at all."""
    code = PRELUDE + f"ARGS = json.loads({json.dumps(json.dumps(args))})\n"
    code += textwrap.dedent(body)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("REPORT ")]
    assert lines, done.stderr
    return json.loads(lines[-1].removeprefix("REPORT "))


def contained(outcome: str) -> bool:
    """An attack step was stopped: any error, never success."""
    return outcome != "ok"


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    folder = tmp_path / "work"
    folder.mkdir()
    (folder / "train.csv").write_text("id,y\n1,0\n")
    return folder


def processes_with(marker: str) -> list[int]:
    """Host pids whose command line holds marker (sandboxed processes are host processes)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def wait_until(condition: Callable[[], bool], seconds: float = SETTLE_S) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


# --- secrets on the host -------------------------------------------------------------------


@dataclass(frozen=True)
class Secrets:
    root: Path
    marker: str  # a string that appears in every secret below, and nowhere else
    world_readable: Path  # an ordinary file outside any mounted folder
    s3_keys: Path  # the dev S3 server's .sandforge/s3/s3.json
    volumes: list[Path]  # SeaweedFS files holding an object with the marker (hidden answers)
    home_files: list[Path]  # a user's ~/.aws/credentials and ~/.ssh key
    docker_socket: Path  # a listening unix socket, as dockerd's is
    s3_endpoint: str


@pytest.fixture(scope="module")
def secrets() -> Iterator[Secrets]:
    """Real secrets in the places the issue found readable, world-readable on purpose: as
    when sandforge runs as an ordinary user and the sandbox shares that user's uid."""
    import boto3

    root = Path("/var/tmp") / f"sandforge-attack-{uuid.uuid4().hex[:8]}"
    marker = f"sandforge-secret-{uuid.uuid4().hex}"
    home = root / "home" / "alice"
    data = root / "project" / ".sandforge" / "s3"
    try:
        for folder in (home / ".aws", home / ".ssh"):
            folder.mkdir(parents=True)
        home_files = [home / ".aws" / "credentials", home / ".ssh" / "id_ed25519"]
        for path in home_files:
            path.write_text(f"[default]\naws_secret_access_key = {marker}\n")
        world_readable = root / "notes.txt"
        world_readable.write_text(marker)
        status = s3_server.up(data, port=s3_server.free_port())
        env = status.env()
        client = boto3.client(
            "s3",
            endpoint_url=env["SANDFORGE_S3_ENDPOINT"],
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            region_name="us-east-1",
        )
        client.create_bucket(Bucket="answers")
        client.put_object(Bucket="answers", Key="private/answer.csv", Body=marker.encode())
        volumes = _files_holding(data / "weed", marker)
        assert volumes, "SeaweedFS stored the object where this test cannot find it"
        with socket.socket(socket.AF_UNIX) as docker_socket:
            docker_socket.bind(str(root / "docker.sock"))
            docker_socket.listen()
            for path in root.rglob("*"):  # world-readable, as a careless setup leaves them
                path.chmod(0o777 if path.is_dir() or path.is_socket() else 0o644)
            root.chmod(0o755)
            yield Secrets(
                root=root,
                marker=marker,
                world_readable=world_readable,
                s3_keys=data / "s3.json",
                volumes=volumes,
                home_files=home_files,
                docker_socket=root / "docker.sock",
                s3_endpoint=env["SANDFORGE_S3_ENDPOINT"],
            )
    finally:
        s3_server.down(data)
        shutil.rmtree(root, ignore_errors=True)


def _files_holding(folder: Path, marker: str) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and marker.encode() in p.read_bytes()]


READ_FILES = """
results = {}
for path in ARGS["paths"]:
    try:
        with open(path, "rb") as f:
            results[path] = "read " + f.read(4096).decode("utf-8", "replace")
    except OSError as exc:
        results[path] = errno.errorcode.get(exc.errno, "?")
report(results=results)
"""


def assert_unreadable(outcome: Outcome, secrets: Secrets) -> None:
    for path, result in outcome.report["results"].items():
        assert not result.startswith("read "), f"{path} was readable: {result[:80]}"
    assert secrets.marker not in outcome.result.stdout + outcome.result.stderr


# --- 1-3: the network ----------------------------------------------------------------------


@pytest.fixture
def tcp_server() -> Iterator[int]:
    """A TCP server on every local address (loopback and this host's interfaces)."""
    with socket.socket() as server:
        server.bind(("0.0.0.0", 0))
        server.listen(16)
        yield server.getsockname()[1]


CONNECT = """
results = {}
for host in ARGS["hosts"]:
    results[host] = attempt(lambda: socket.create_connection((host, ARGS["port"]), timeout=3))
report(results=results)
"""


def test_loopback_is_unreachable(isolated: str, workdir: Path, tcp_server: int) -> None:
    args = {"hosts": ["127.0.0.1", "localhost"], "port": tcp_server}
    assert on_host(CONNECT, args)["results"]["127.0.0.1"] == "ok"
    outcome = attack(CONNECT, workdir, args)
    assert all(contained(r) for r in outcome.report["results"].values()), outcome.report


def test_host_interfaces_are_unreachable(isolated: str, workdir: Path, tcp_server: int) -> None:
    address = _own_address()
    if address is None:
        pytest.skip("this host has no non-loopback IPv4 address")
    args = {"hosts": [address], "port": tcp_server}
    assert on_host(CONNECT, args)["results"][address] == "ok"
    outcome = attack(CONNECT, workdir, args)
    assert contained(outcome.report["results"][address]), outcome.report


def _own_address() -> str | None:
    """This host's address towards the outside (a UDP connect sends no packet)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("198.51.100.7", 9))  # TEST-NET-2: documentation, never routed
        except OSError:
            return None
        return probe.getsockname()[0]


def test_no_route_to_external_addresses(isolated: str, workdir: Path) -> None:
    body = """
    def route(family, address):
        with socket.socket(family, socket.SOCK_DGRAM) as probe:  # connect() sends nothing
            probe.connect((address, 9))
    interfaces = sorted(name for _, name in socket.if_nameindex())
    report(v4=attempt(lambda: route(socket.AF_INET, "198.51.100.7")),
           v6=attempt(lambda: route(socket.AF_INET6, "2001:db8::7")), interfaces=interfaces)
    """
    outcome = attack(body, workdir)
    assert contained(outcome.report["v4"]) and contained(outcome.report["v6"]), outcome.report
    assert outcome.report["interfaces"] == ["lo"]


# --- 4-9: host secrets ---------------------------------------------------------------------


def test_docker_socket_is_unreachable(isolated: str, workdir: Path, secrets: Secrets) -> None:
    body = """
    results = {}
    for path in ARGS["sockets"]:
        def connect():
            with socket.socket(socket.AF_UNIX) as client:
                client.connect(path)
        results[path] = attempt(connect)
    report(results=results)
    """
    sockets = [str(secrets.docker_socket), "/var/run/docker.sock", "/run/docker.sock"]
    assert on_host(body, {"sockets": sockets})["results"][sockets[0]] == "ok"
    outcome = attack(body, workdir, {"sockets": sockets})
    assert all(contained(r) for r in outcome.report["results"].values()), outcome.report


def test_etc_shadow_is_unreadable(isolated: str, workdir: Path, secrets: Secrets) -> None:
    outcome = attack(READ_FILES, workdir, {"paths": ["/etc/shadow", "/etc/gshadow"]})
    assert_unreadable(outcome, secrets)
    host_shadow = Path("/etc/shadow")
    if host_shadow.exists() and os.access(host_shadow, os.R_OK):
        first_line = host_shadow.read_text().splitlines()[0]
        assert first_line not in outcome.result.stdout


def test_s3_keys_file_is_unreadable(isolated: str, workdir: Path, secrets: Secrets) -> None:
    keys = json.loads(secrets.s3_keys.read_text())  # the control: a real, readable keys file
    secret_key = keys["identities"][0]["credentials"][0]["secretKey"]
    outcome = attack(READ_FILES, workdir, {"paths": [str(secrets.s3_keys)]})
    assert_unreadable(outcome, secrets)
    assert secret_key not in outcome.result.stdout


def test_seaweedfs_volume_files_are_unreadable(
    isolated: str, workdir: Path, secrets: Secrets
) -> None:
    paths = [str(p) for p in secrets.volumes]
    assert all(
        r.startswith("read") for r in on_host(READ_FILES, {"paths": paths})["results"].values()
    )
    outcome = attack(READ_FILES, workdir, {"paths": paths})
    assert_unreadable(outcome, secrets)


def test_s3_server_is_unreachable(isolated: str, workdir: Path, secrets: Secrets) -> None:
    host, port = secrets.s3_endpoint.removeprefix("http://").split(":")
    args = {"hosts": [host], "port": int(port)}
    assert on_host(CONNECT, args)["results"][host] == "ok"
    outcome = attack(CONNECT, workdir, args)
    assert contained(outcome.report["results"][host]), outcome.report


def test_home_folders_are_unreadable(isolated: str, workdir: Path, secrets: Secrets) -> None:
    body = READ_FILES.replace("report(results=results)", "report(results=results, home=listing)")
    body = "try:\n    listing = sorted(os.listdir(ARGS['home']))\nexcept OSError as exc:\n"
    body += "    listing = errno.errorcode.get(exc.errno)\n" + READ_FILES.replace(
        "report(results=results)", "report(results=results, home=listing)"
    )
    home = Path.home()
    args = {"paths": [str(p) for p in secrets.home_files], "home": str(home)}
    assert all(r.startswith("read") for r in on_host(body, args)["results"].values())
    outcome = attack(body, workdir, args)
    assert_unreadable(outcome, secrets)
    listing = outcome.report["home"]
    # The real $HOME shows at most the way to an interpreter installed under it (pyenv).
    interpreter = [Path(p).resolve() for p in (sys.prefix, sys.base_prefix)]
    allowed = {p.relative_to(home).parts[0] for p in interpreter if p.is_relative_to(home)}
    assert isinstance(listing, str) or set(listing) <= allowed, listing


def test_host_files_beyond_the_run_are_invisible(
    isolated: str, workdir: Path, secrets: Secrets
) -> None:
    """The host root is not mounted: only the interpreter, its libraries, the task folder."""
    body = """
    listing = {}
    for folder in ARGS["folders"]:
        try:
            listing[folder] = sorted(os.listdir(folder))
        except OSError as exc:
            listing[folder] = errno.errorcode.get(exc.errno, "?")
    report(listing=listing, marker=attempt(lambda: open(ARGS["file"]).read()))
    """
    repository = Path(sys.prefix).parent  # holds .venv, the code, .sandforge/ and store/
    args = {
        "folders": [str(repository), "/etc", "/home", "/var"],
        "file": str(secrets.world_readable),
    }
    outcome = attack(body, workdir, args)
    assert contained(outcome.report["marker"])
    listing = outcome.report["listing"]
    if isolated == "bubblewrap":
        assert listing[str(repository)] in ([Path(sys.prefix).name], "ENOENT"), listing
        assert all(listing[f] == "ENOENT" for f in ("/etc", "/home", "/var")), listing
    else:  # the image's own /etc and /var, never the host's
        assert listing[str(repository)] == "ENOENT", listing
        assert listing["/home"] == [], listing


def test_parent_environment_is_unreadable(isolated: str, tmp_path: Path) -> None:
    """API keys sit in the parent's environment: not in the run's, nor through /proc."""
    secret = f"sk-ant-{uuid.uuid4().hex}"
    scan = """
import json, os, sys
found = {}
for entry in [p for p in os.listdir("/proc") if p.isdigit()] + ["self", sys.argv[1]]:
    try:
        found[entry] = open(f"/proc/{entry}/environ", "rb").read().decode("utf-8", "replace")
    except OSError as exc:
        found[entry] = f"error {exc.errno}"
print(json.dumps({"env": dict(os.environ), "proc": found}))
"""
    helper = """
import os, sys
from pathlib import Path
from sandforge.validators.sandbox import PYTHON, run_sandboxed
assert os.environ["ANTHROPIC_API_KEY"] in Path("/proc/self/environ").read_text()  # control
argv = [PYTHON, "-c", sys.argv[2], str(os.getpid())]  # the sandbox is told our pid
result = run_sandboxed(argv, workdir=Path(sys.argv[1]), timeout_s=60)
sys.stdout.write(result.stdout + result.stderr)
"""
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "ANTHROPIC_API_KEY": secret, ENV_VAR: isolated}
    done = subprocess.run(
        [sys.executable, "-c", helper, str(work), scan],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert secret not in done.stdout
    seen = json.loads(done.stdout)
    assert "PATH=" in seen["proc"]["self"]  # the scan ran and could read its own environ
    assert "ANTHROPIC_API_KEY" not in seen["env"]


# --- 10-12: the host's files stay as they are ----------------------------------------------


def test_venv_site_packages_is_read_only(isolated: str, workdir: Path) -> None:
    name = f"sandforge_planted_{uuid.uuid4().hex[:8]}.pth"
    host_site = Path(sysconfig.get_paths()["purelib"])
    body = """
    import sysconfig
    targets = [ARGS["host_site"], sysconfig.get_paths()["purelib"], os.path.dirname(os.__file__)]
    results = {}
    for folder in targets:
        results[folder] = attempt(lambda: open(os.path.join(folder, ARGS["name"]), "w").write("x"))
    report(results=results)
    """
    outcome = attack(body, workdir, {"host_site": str(host_site), "name": name})
    assert all(contained(r) for r in outcome.report["results"].values()), outcome.report
    assert not (host_site / name).exists()


def test_host_filesystem_is_not_writable(isolated: str, workdir: Path) -> None:
    probe = Path("/var/tmp") / f"sandforge-probe-{uuid.uuid4().hex}"
    body = """
    results = {}
    for path in ARGS["paths"]:
        results[path] = attempt(lambda: open(path, "w").write("escaped"))
    report(results=results)
    """
    paths = [str(probe), f"/usr/lib/{probe.name}", f"/{probe.name}", f"/etc/{probe.name}"]
    outcome = attack(body, workdir, {"paths": paths})
    assert all(contained(r) for r in outcome.report["results"].values()), outcome.report
    assert not probe.exists() and not Path("/usr/lib", probe.name).exists()


def test_workdir_is_never_written(any_backend: str, workdir: Path) -> None:
    """The run gets a copy: deleting, overwriting or planting files there changes nothing."""
    body = """
    os.remove("train.csv")
    open("planted.py", "w").write("import os")
    os.symlink("/etc/passwd", "link")
    report(left=sorted(os.listdir(".")))
    """
    outcome = attack(body, workdir)
    assert outcome.report["left"] == ["link", "planted.py"]
    assert sorted(p.name for p in workdir.iterdir()) == ["train.csv"]
    assert (workdir / "train.csv").read_text() == "id,y\n1,0\n"


# --- 13-15: other processes ----------------------------------------------------------------


def test_parent_cannot_be_signalled_or_traced(isolated: str, workdir: Path) -> None:
    body = """
    parent = ARGS["parent"]
    PTRACE_SEIZE = 0x4206  # attaches without stopping: safe even if it were allowed
    libc.ptrace.restype = ctypes.c_long
    traced = call(libc.ptrace(ctypes.c_long(PTRACE_SEIZE), ctypes.c_long(parent), None, None))
    report(signal=attempt(lambda: os.kill(parent, 0)), ptrace=traced,
           status=attempt(lambda: open(f"/proc/{parent}/status").read()),
           ppid=os.getppid())
    """
    outcome = attack(body, workdir, {"parent": os.getpid()})
    assert contained(outcome.report["signal"]), outcome.report  # ESRCH: not even visible
    assert contained(outcome.report["ptrace"]), outcome.report
    assert contained(outcome.report["status"]), outcome.report
    assert outcome.report["ppid"] != os.getpid()


def test_host_processes_are_invisible(isolated: str, workdir: Path) -> None:
    body = """
    pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
    report(pids=pids, count=len(pids))
    """
    outcome = attack(body, workdir)
    assert outcome.report["count"] < 10, outcome.report  # only the run's own few processes


def test_ptrace_is_refused(isolated: str, workdir: Path) -> None:
    """Our seccomp filter refuses ptrace altogether, even of the run's own processes
    (docker's default profile alone would allow it: the launcher stacks ours on it)."""
    body = """
    libc.ptrace.restype = ctypes.c_long
    report(traceme=call(libc.ptrace(ctypes.c_long(0), 0, None, None)))  # PTRACE_TRACEME
    """
    assert attack(body, workdir).report["traceme"] == "EPERM"


# --- 16-21: processes and resources --------------------------------------------------------

SLEEPER = (
    "import signal, time; [signal.signal(s, signal.SIG_IGN) for s in (1, 15)]; time.sleep(600)"
)
DAEMON = """
import time
marker = ARGS["marker"][::-1]  # reversed in argv: only the daemon's command line holds it
pid = os.fork()
if pid == 0:
    os.setsid()  # leaves the run's session and process group
    if os.fork() == 0:
        os.execv(sys.executable, [sys.executable, "-c", ARGS["sleeper"], marker])
    os._exit(0)
os.waitpid(pid, 0)
time.sleep(0.5)
report(spawned=True)
if ARGS["stay"]:
    time.sleep(600)
"""


def test_no_daemon_outlives_the_run(any_backend: str, workdir: Path) -> None:
    needs_cgroup(any_backend)
    marker = f"sandforge-daemon-{uuid.uuid4().hex}"
    args = {"marker": marker[::-1], "sleeper": SLEEPER, "stay": False}
    outcome = attack(DAEMON, workdir, args)
    assert outcome.report["spawned"]
    assert wait_until(lambda: not processes_with(marker)), processes_with(marker)


def test_timeout_kills_every_process(any_backend: str, workdir: Path) -> None:
    needs_cgroup(any_backend)
    marker = f"sandforge-timeout-{uuid.uuid4().hex}"
    args = {"marker": marker[::-1], "sleeper": SLEEPER, "stay": True}
    outcome = attack(DAEMON, workdir, args, timeout_s=8)
    assert outcome.result.timed_out
    assert outcome.result.seconds < 8 + SETTLE_S
    assert wait_until(lambda: not processes_with(marker)), processes_with(marker)


def test_fork_bomb_is_contained(any_backend: str, workdir: Path) -> None:
    needs_cgroup(any_backend)
    body = """
    import time
    started = 0
    try:
        for _ in range(2000):
            if os.fork() == 0:
                time.sleep(60)
                os._exit(0)
            started += 1
    except OSError as exc:
        report(started=started, error=errno.errorcode.get(exc.errno))
    else:
        report(started=started, error=None)
    """
    outcome = attack(body, workdir, max_procs=24)
    assert outcome.report["error"] == "EAGAIN", outcome.report
    assert 0 < outcome.report["started"] < 24


def test_memory_is_limited_for_the_whole_run(any_backend: str, workdir: Path) -> None:
    """4 children of 150 MB each stay under the per-process limit, not under the run's."""
    needs_cgroup(any_backend)
    body = """
    import time
    children = []
    for _ in range(4):
        pid = os.fork()
        if pid == 0:
            block = bytearray(150 * 2**20)
            for i in range(0, len(block), 4096):
                block[i] = 1  # touch every page
            time.sleep(2)
            os._exit(0)
        children.append(pid)
    report(status=[os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in children])
    """
    outcome = attack(body, workdir, memory_mb=256)
    assert -signal.SIGKILL in outcome.report["status"], outcome.report
    assert "256 MB memory limit" in outcome.result.stderr


def test_one_process_cannot_allocate_past_the_limit(any_backend: str, workdir: Path) -> None:
    body = """
    try:
        block = bytearray(1024 * 2**20)
        report(allocated=True)
    except MemoryError:
        report(allocated=False)
    """
    assert attack(body, workdir, memory_mb=256).report == {"allocated": False}


FILL = """
written = 0
error = None
try:
    for i in range(ARGS["files"]):
        with open(os.path.join(ARGS["folder"], f"fill{i}"), "wb") as f:
            for _ in range(8):
                f.write(b"x" * 2**20)
                written += 1
except OSError as exc:
    error = errno.errorcode.get(exc.errno)
report(written_mb=written, error=error)
"""


def test_task_folder_disk_is_limited(any_backend: str, workdir: Path) -> None:
    needs_tmpfs()
    outcome = attack(FILL, workdir, {"folder": ".", "files": 100}, disk_mb=32, memory_mb=512)
    assert outcome.report["error"] == "ENOSPC", outcome.report
    assert outcome.report["written_mb"] <= 32
    assert sorted(p.name for p in workdir.iterdir()) == ["train.csv"]


def test_task_folder_inodes_are_limited(any_backend: str, workdir: Path) -> None:
    """Empty files fill no byte of the size limit: their number is bounded on its own."""
    from sandforge.validators.sandbox.taskdir import INODES

    needs_tmpfs()
    body = """
    made = 0
    try:
        for i in range(ARGS["files"]):
            open(f"e{i}", "w").close()
            made += 1
        report(made=made, error=None)
    except OSError as exc:
        report(made=made, error=errno.errorcode.get(exc.errno))
    """
    outcome = attack(body, workdir, {"files": INODES * 2})
    assert outcome.report["error"] == "ENOSPC", outcome.report
    assert outcome.report["made"] < INODES


def test_tmp_is_limited(isolated: str, workdir: Path) -> None:
    outcome = attack(FILL, workdir, {"folder": "/tmp", "files": 100}, max_file_mb=16)
    assert outcome.report["error"] in ("ENOSPC", "EFBIG"), outcome.report
    assert outcome.report["written_mb"] <= 16


# --- 22-24: outputs ------------------------------------------------------------------------


def test_symlink_output_is_refused(any_backend: str, workdir: Path, tmp_path: Path) -> None:
    answers = tmp_path / "private" / "answer.csv"
    answers.parent.mkdir()
    answers.write_text("id,y\nsecret-answer\n")
    body = """
    os.symlink(ARGS["answers"], "submission.csv")
    os.symlink("/etc/passwd", "ladder.json")
    report(planted=True)
    """
    outcome = attack(
        body, workdir, {"answers": str(answers)}, outputs=["submission.csv", "ladder.json"]
    )
    assert outcome.result.outputs == {}
    assert set(outcome.result.refused_outputs) == {"submission.csv", "ladder.json"}
    assert all("symbolic link" in why for why in outcome.result.refused_outputs.values())
    assert not (workdir / "submission.csv").exists()


def test_fifo_and_other_special_outputs_are_refused(any_backend: str, workdir: Path) -> None:
    body = """
    os.mkfifo("submission.csv")  # reading it would block forever
    os.mkdir("ladder.json")
    open("real.csv", "w").write("id\\n")
    os.link("real.csv", "linked.csv")
    report(planted=True)
    """
    names = ["submission.csv", "ladder.json", "linked.csv"]
    start = time.monotonic()
    outcome = attack(body, workdir, outputs=names)
    assert time.monotonic() - start < 60  # no hang on the FIFO
    refused = outcome.result.refused_outputs
    assert "FIFO" in refused["submission.csv"]
    assert "directory" in refused["ladder.json"]
    assert "hard link" in refused["linked.csv"]
    assert outcome.result.outputs == {}


def test_baseline_planting_a_link_fails_cleanly(
    any_backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The runner's own path: a baseline whose submission.csv is a link to the answers is a
    failed baseline; the link is never followed, its target never read or written."""
    from sandforge.validators.baselines import runner

    answers = tmp_path / "private" / "answer.csv"
    answers.parent.mkdir()
    answers.write_text("id,y\n1,secret-answer\n")
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "ladder.py").write_text(
        "import json, os\n"
        f"os.symlink({str(answers)!r}, 'submission_trivial.csv')\n"
        "open('ladder.json', 'w').write(json.dumps({'trivial': {'seconds': 0.1}}))\n"
    )
    monkeypatch.setattr(runner, "SCRIPTS_DIR", scripts)
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(runner.BaselineFailed, match="symbolic link") as failure:
        runner.run_ladder(work, ("trivial",))
    assert "secret-answer" not in str(failure.value)
    assert not (work / "submission_trivial.csv").exists()
    assert answers.read_text() == "id,y\n1,secret-answer\n"


# --- 25-30: syscalls an escape starts from -------------------------------------------------


SYSCALLS = """
NR = ARGS["nr"]
results = {}
results["unshare_user"] = call(libc.unshare(ARGS["newuser"]))
results["unshare_mount_net"] = call(libc.unshare(ARGS["newns"] | ARGS["newnet"]))
os.makedirs("mnt", exist_ok=True)
results["mount"] = call(libc.mount(b"none", b"mnt", b"tmpfs", 0, None))
results["umount_proc"] = call(libc.umount2(b"/proc", 2))
# KEYCTL_GET_KEYRING_ID of the session keyring, creating it: works for any process outside.
results["keyctl"] = syscall(NR["keyctl"], 0, -3, 1)
results["add_key"] = call(libc.syscall(ctypes.c_long(NR["add_key"]), b"user", b"sandforge",
                                        b"x", ctypes.c_long(1), ctypes.c_long(-2)))
map_attr = (ctypes.c_uint32 * 18)(2, 4, 4, 1)  # BPF_MAP_CREATE: an array map of one int
results["bpf"] = call(libc.syscall(ctypes.c_long(NR["bpf"]), ctypes.c_long(0), map_attr,
                                   ctypes.c_long(72)))
perf_attr = (ctypes.c_uint64 * 16)()
perf_attr[0] = 1 | (64 << 32)  # PERF_TYPE_SOFTWARE, size 64
perf_attr[5] = 0x60  # exclude_kernel | exclude_hv: allowed to ordinary users outside
results["perf_event_open"] = call(libc.syscall(ctypes.c_long(NR["perf_event_open"]), perf_attr,
                                               ctypes.c_long(0), ctypes.c_long(-1),
                                               ctypes.c_long(-1), ctypes.c_long(0)))
results["userfaultfd"] = syscall(NR["userfaultfd"], 0)
params = (ctypes.c_uint32 * 30)()
results["io_uring_setup"] = call(libc.syscall(ctypes.c_long(NR["io_uring_setup"]),
                                              ctypes.c_long(1), params))
results["chroot"] = call(libc.chroot(b"."))
results["pivot_root"] = call(libc.syscall(ctypes.c_long(NR["pivot_root"]), b".", b"."))
try:
    with open("/proc/self/ns/uts") as ns:
        results["setns"] = call(libc.setns(ns.fileno(), 0))
except OSError as exc:  # outside, the umount above may have taken /proc (in its own namespace)
    results["setns"] = errno.errorcode.get(exc.errno)
report(results=results)
"""
SYSCALL_ARGS = {
    "nr": NR,
    "newuser": CLONE_NEWUSER,
    "newns": CLONE_NEWNS,
    "newnet": CLONE_NEWNET,
}


@pytest.fixture(scope="module")
def syscalls_on_host() -> dict[str, str]:
    """The control: which of these work for an unprivileged process outside any sandbox.
    Run as a throw-away child that first drops to nobody: no host state is changed."""
    if not X86_64:
        pytest.skip("syscall numbers here are x86_64's")
    drop = "os.setgroups([]); os.setresgid(65534, 65534, 65534); os.setresuid(65534, 65534, 65534)"
    body = SYSCALLS if os.geteuid() != 0 else f"{drop}\n{SYSCALLS}"
    work = Path("/var/tmp") / f"sandforge-syscalls-{uuid.uuid4().hex[:8]}"
    work.mkdir()
    work.chmod(0o777)  # nobody works there
    try:
        code = PRELUDE + f"ARGS = json.loads({json.dumps(json.dumps(SYSCALL_ARGS))})\n"
        code += f"os.chdir({str(work)!r})\n" + textwrap.dedent(body)
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
        )
        lines = [line for line in done.stdout.splitlines() if line.startswith("REPORT ")]
        assert lines, done.stderr
        return json.loads(lines[-1].removeprefix("REPORT "))["results"]
    finally:
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="module")
def sandboxed_syscalls(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, str]]:
    """The same syscalls inside each isolating backend (run once per backend)."""
    found = {}
    for backend in ISOLATING:
        with pytest.MonkeyPatch.context() as monkeypatch:
            monkeypatch.setenv(ENV_VAR, backend)
            try:
                sandbox_backend()
            except SandboxConfigError:
                continue
            work = tmp_path_factory.mktemp(f"syscalls-{backend}")
            found[backend] = attack(SYSCALLS, work, SYSCALL_ARGS).report["results"]
    return found


@pytest.mark.parametrize(
    "name",
    [
        "unshare_user",
        "unshare_mount_net",
        "mount",
        "umount_proc",
        "keyctl",
        "add_key",
        "bpf",
        "perf_event_open",
        "userfaultfd",
        "io_uring_setup",
        "chroot",
        "pivot_root",
        "setns",
    ],
)
def test_dangerous_syscall_is_refused(
    isolated: str, name: str, sandboxed_syscalls: dict[str, dict[str, str]]
) -> None:
    needs_x86_64()
    outcome = sandboxed_syscalls[isolated][name]
    assert contained(outcome), f"{name} succeeded inside {isolated}"
    assert outcome == "EPERM", outcome  # the filter answers before any permission check


def test_controls_show_the_syscall_attacks_work_outside(syscalls_on_host: dict[str, str]) -> None:
    """Outside any sandbox an unprivileged process may create a user namespace (and mount
    inside it), use the keyring and open a perf event: refusing them is the sandbox's doing."""
    for name in ("unshare_user", "keyctl", "add_key"):
        assert syscalls_on_host[name] == "ok", syscalls_on_host


def test_clone3_answers_enosys_so_threads_still_work(bubblewrap: str, workdir: Path) -> None:
    needs_x86_64()
    body = """
    import threading
    ran = []
    thread = threading.Thread(target=lambda: ran.append(1))
    thread.start()
    thread.join()
    report(clone3=syscall(ARGS["clone3"], 0, 0), thread=ran == [1])
    """
    outcome = attack(body, workdir, {"clone3": NR["clone3"]})
    assert outcome.report["clone3"] == "ENOSYS"
    assert outcome.report["thread"]


def test_runs_unprivileged_under_seccomp(isolated: str, workdir: Path) -> None:
    body = """
    lines = open("/proc/self/status").read().splitlines()
    status = dict(line.split(":\\t", 1) for line in lines if ":\\t" in line)
    report(uid=os.getuid(), caps=status["CapEff"].strip(), nnp=status["NoNewPrivs"].strip(),
           seccomp=status["Seccomp"].strip())
    """
    outcome = attack(body, workdir)
    assert outcome.report["uid"] != 0
    assert outcome.report["caps"] == "0000000000000000"
    assert outcome.report["nnp"] == "1"
    assert outcome.report["seccomp"] == "2"  # a filter is loaded (bwrap's, or docker's profile)


# --- 31-33: a parent that dies -------------------------------------------------------------


def test_killed_parent_leaves_nothing_running(isolated: str, tmp_path: Path) -> None:
    """SIGKILL the process that runs the sandbox: its run dies too (bubblewrap: with its
    parent; docker: the watchdog removes the container), and the next run in another
    process removes its leftover task folder mount and cgroups."""
    from sandforge.validators.sandbox.core import owner_tag

    marker = f"sandforge-orphan-{uuid.uuid4().hex}"
    work = tmp_path / "work"
    work.mkdir()
    orphan = "\n".join(
        [
            "import os, sys, time",
            "if os.fork() == 0:",
            # reversed here, so only the sleeper's own command line holds the marker
            f"    argv = [sys.executable, '-c', {SLEEPER!r}, {marker[::-1]!r}[::-1]]",
            "    os.execv(sys.executable, argv)",
            "time.sleep(600)",
        ]
    )
    helper = (
        "import sys\n"
        "from pathlib import Path\n"
        "from sandforge.validators.sandbox import PYTHON, run_sandboxed\n"
        "run_sandboxed([PYTHON, '-c', sys.argv[2]], workdir=Path(sys.argv[1]), timeout_s=600)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", helper, str(work), orphan], env={**os.environ, ENV_VAR: isolated}
    )
    try:
        assert wait_until(lambda: bool(processes_with(marker)), 120), "the run never started"
        tag = owner_tag(parent.pid)
    finally:
        parent.kill()
        parent.wait()
    assert wait_until(lambda: not processes_with(marker)), processes_with(marker)
    if isolated == "docker":
        import docker as docker_sdk
        from sandforge.validators.sandbox.docker_backend import OWNER_LABEL

        client = docker_sdk.from_env()
        try:

            def gone() -> bool:  # one listing call: containers vanish while it runs
                containers = client.api.containers(all=True, filters={"label": OWNER_LABEL})
                return not any(c["Labels"][OWNER_LABEL].endswith(":" + tag) for c in containers)

            assert wait_until(gone), "the dead parent's container is still there"
        finally:
            client.close()

    def leftovers() -> list[str]:
        mounts = Path("/proc/self/mountinfo").read_text().splitlines()
        found = [line.split()[4] for line in mounts if tag in line]
        layout = cgroup._layout()
        if layout is not None:
            found += [str(p) for top in {layout.memory, layout.pids} for p in top.iterdir()]
        return [path for path in found if tag in path]

    if os.geteuid() == 0:
        assert leftovers(), "the killed parent left no task folder mount to sweep"
    run_sandboxed([PYTHON, "-c", "pass"], workdir=work, timeout_s=60)  # sweeps stale leftovers
    assert leftovers() == []


def test_stale_containers_of_dead_owners_are_removed(monkeypatch: pytest.MonkeyPatch) -> None:
    use_backend("docker", monkeypatch)
    import docker as docker_sdk
    from sandforge.validators.sandbox import docker_backend

    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    host, boot, _ = docker_backend.owner().split(":", 2)
    label = f"{host}:{boot}:{dead.stdout.strip()}-1"  # a pid that ended, a start time never seen
    client = docker_sdk.from_env()
    try:
        container = client.containers.create(
            docker_backend.image(),
            ["sleep", "600"],
            labels={docker_backend.LABEL: "1", docker_backend.OWNER_LABEL: label},
            network_mode="none",
        )
        container.start()
        assert container.name in docker_backend.remove_stale(client)
        with pytest.raises(docker_sdk.errors.NotFound):
            client.containers.get(container.id)
    finally:
        client.close()


# --- the fail-closed CLI -------------------------------------------------------------------


def _cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sandforge.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=600,
    )


def test_generate_refuses_without_an_isolating_backend(tmp_path: Path) -> None:
    """No bwrap on PATH, no docker daemon: exit 2 with how to install one, before any work."""
    env = {
        **os.environ,
        "PATH": str(Path(sys.executable).parent),  # python only: no bwrap
        "DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock",
    }
    env.pop(ENV_VAR, None)
    store = tmp_path / "store"
    done = _cli(
        ["generate", "--seeds", "all", "--per-seed", "1", "--store", str(store)], env, tmp_path
    )
    assert done.returncode == 2, done.stderr
    assert "no isolating sandbox backend" in done.stderr
    assert "apt-get install bubblewrap" in done.stderr and "scripts/docker.sh" in done.stderr
    assert "--sandbox rlimit" in done.stderr
    assert not store.exists()  # refused before any work


def test_generate_with_rlimit_warns_on_stderr_and_records_it(tmp_path: Path) -> None:
    """An explicit opt-out runs, says so on the terminal, and the manifest says rlimit."""
    env = dict(os.environ)
    env.pop(ENV_VAR, None)
    store = tmp_path / "store"
    args = ["generate", "--seeds", "spaceship-titanic", "--per-seed", "1", "--sandbox", "rlimit"]
    done = _cli([*args, "--store", str(store), "--json"], env, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "NOT isolated" in done.stderr
    summary = json.loads(done.stdout)
    assert summary["sandbox"] == ["rlimit"]
    manifests = list(store.glob("*/*/manifest.json"))
    assert manifests
    assert all(json.loads(m.read_text())["sandbox"] == "rlimit" for m in manifests)
