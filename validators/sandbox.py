"""Run untrusted code (baselines, generated solutions) with no network and a read-only host.

Three backends:
- "bubblewrap" (default): fresh mount, pid, network, ipc and uts namespaces; the host
  filesystem is read-only, /tmp is a small private tmpfs and only `workdir` is writable.
- "rlimit": the same resource limits without namespaces. It is chosen automatically when
  bubblewrap is missing or unusable and logs a WARNING, because the code is then NOT isolated.
- "docker" (production; never chosen automatically): a throw-away container per run from the
  image `SANDFORGE_SANDBOX_IMAGE`, with no network, a read-only root, no capabilities, a
  non-root uid and cgroup limits; see `validators.docker_sandbox`.
`SANDFORGE_SANDBOX=bubblewrap|rlimit|docker` forces a backend.

Commands that run Python start with `PYTHON` ("python"): each backend resolves it to its own
interpreter (this process's under bubblewrap and rlimit, the image's python3 under docker).

Resource limits are set by a tiny launcher (`python -I -S`) that execs the command, not by
`preexec_fn`, which can deadlock when the parent has threads (Prefect runs tasks in threads).

RLIMIT_NPROC never applies to uid 0, so when we are root the bubblewrap backend runs the
command as a fresh unprivileged uid (one per run, so concurrent sandboxes do not share the
process budget). That needs root in the initial user namespace to switch uid, so this mode
unshares every namespace except the user one; the workdir is lent to that uid for the run.
The docker backend lends the workdir to a fresh uid the same way and runs the container as it.
"""

from __future__ import annotations

import contextlib
import functools
import io
import itertools
import logging
import os
import select
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

log = logging.getLogger(__name__)

BACKENDS = ("bubblewrap", "rlimit", "docker")
ENV_VAR = "SANDFORGE_SANDBOX"
PYTHON = "python"  # argv[0] meaning "the sandbox's Python interpreter"
DOCKER_PYTHON = "python3"  # the sandbox image's, on its PATH
# argv[0] values resolved to the backend's interpreter. This process's own path is one: callers
# written for the host backends pass it, and it does not exist in the docker image.
_PYTHON_ALIASES = frozenset({PYTHON, sys.executable})
OUTPUT_LIMIT_CHARS = 20_000  # tail of stdout/stderr kept in a SandboxResult
_HOST_PATH = f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin"
_UID_BASE = 1_900_000_000  # far above real accounts; below 2**31 for tools that use int32
_uid_counter = itertools.count()

# Applies the limits given on its command line, drops to an unprivileged uid if one is
# given (uid < 0: keep ours), then becomes the command.
_LAUNCHER = """\
import os, resource, sys
limits = zip(
    (resource.RLIMIT_AS, resource.RLIMIT_CPU, resource.RLIMIT_NPROC, resource.RLIMIT_FSIZE,
     resource.RLIMIT_CORE),
    (int(v) for v in sys.argv[1:6]),
)
for res, value in limits:
    if value < 0:
        continue
    _, hard = resource.getrlimit(res)
    value = value if hard == resource.RLIM_INFINITY else min(value, hard)
    # CPU: SIGXCPU at the soft limit, SIGKILL one second later.
    cap = value + 1 if res == resource.RLIMIT_CPU and hard == resource.RLIM_INFINITY else value
    resource.setrlimit(res, (value, cap))
uid = int(sys.argv[6])
if uid >= 0:
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
os.execvp(sys.argv[7], sys.argv[7:])
"""


class SandboxConfigError(RuntimeError):
    """The requested backend is unknown or cannot run here."""


@dataclass(frozen=True)
class SandboxResult:
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    timed_out: bool
    backend: str


def sandbox_backend() -> str:
    """The backend `run_sandboxed` will use now (the env var is read on every call)."""
    forced = os.environ.get(ENV_VAR, "").strip()
    if forced == "rlimit":
        _warn_not_isolated(f"forced by {ENV_VAR}=rlimit")
        return "rlimit"
    if forced == "docker":
        from sandforge.validators import docker_sandbox

        problem = docker_sandbox.problem()
        if problem:
            raise SandboxConfigError(f"{ENV_VAR}=docker but {problem}")
        return "docker"
    if forced not in ("", "bubblewrap"):
        raise SandboxConfigError(f"{ENV_VAR}={forced!r}: expected one of {', '.join(BACKENDS)}")
    problem = _bwrap_problem()
    if not problem:
        return "bubblewrap"
    if forced:
        raise SandboxConfigError(f"{ENV_VAR}=bubblewrap but bubblewrap is unusable: {problem}")
    _warn_not_isolated(problem)
    return "rlimit"


def run_sandboxed(
    argv: list[str],
    *,
    workdir: Path,
    timeout_s: float,
    memory_mb: int = 2048,
    cpu_s: int | None = None,
    max_procs: int = 64,
    max_file_mb: int = 64,
    readonly_dirs: Sequence[Path] = (),
) -> SandboxResult:
    """Run argv with cwd=workdir under the limits; kill the whole tree at timeout_s.

    argv[0] == PYTHON (or sys.executable) runs the backend's interpreter. memory_mb caps each
    process's address space (under docker also the container's total memory), max_file_mb
    each written file (and the sandbox's /tmp and /dev/shm), max_procs the processes and
    threads of the run. cpu_s=None leaves CPU time to the wall-clock timeout. readonly_dirs
    must be visible inside (e.g. a script's folder under /tmp); under bubblewrap the
    interpreter's prefixes always are. returncode is -N (bubblewrap, rlimit) or 128+N
    (docker) when signal N ended the command.
    """
    backend = sandbox_backend()
    workdir = workdir.resolve(strict=True)
    in_docker = backend == "docker"
    python = DOCKER_PYTHON if in_docker else sys.executable
    argv = [python if i == 0 and arg in _PYTHON_ALIASES else arg for i, arg in enumerate(argv)]
    drop_to = _fresh_uid() if backend != "rlimit" and os.geteuid() == 0 else -1
    limits = [
        memory_mb * 2**20,
        -1 if cpu_s is None else cpu_s,
        -1 if in_docker else max_procs,  # docker: the container's pids limit, exact per run
        max_file_mb * 2**20,
        0,  # no core dumps in the workdir
    ]
    # Under docker the container already runs as the unprivileged uid: the launcher keeps it.
    launcher_uid = -1 if in_docker else drop_to
    command = [python, "-I", "-S", "-c", _LAUNCHER, *map(str, limits), str(launcher_uid)]
    command += argv
    if backend == "bubblewrap":
        roots = [Path(sys.prefix), Path(sys.base_prefix), *readonly_dirs]
        command = _bwrap_args(workdir, roots, max_file_mb, drop_to >= 0) + command
    owner = workdir.stat()
    if drop_to >= 0:
        _chown_tree(workdir, drop_to, drop_to)
    try:
        if in_docker:
            user = drop_to if drop_to >= 0 else os.getuid()
            group = drop_to if drop_to >= 0 else os.getgid()
            return _execute_docker(
                command,
                workdir=workdir,
                readonly_dirs=readonly_dirs,
                user=f"{user}:{group}",
                timeout_s=timeout_s,
                memory_mb=memory_mb,
                max_procs=max_procs,
                max_file_mb=max_file_mb,
            )
        return _execute(command, workdir, timeout_s, backend)
    finally:
        if drop_to >= 0:
            _chown_tree(workdir, owner.st_uid, owner.st_gid)


def _execute_docker(command: list[str], *, workdir: Path, **options: object) -> SandboxResult:
    from sandforge.validators import docker_sandbox

    status, stdout, stderr, seconds, timed_out, note = docker_sandbox.run(
        command, workdir=workdir, env=_minimal_env(workdir, docker_sandbox.PATH), **options
    )
    return SandboxResult(
        returncode=status,
        stdout=_tail(io.BytesIO(stdout)),
        stderr=_tail(io.BytesIO(stderr + note.encode())),
        seconds=seconds,
        timed_out=timed_out,
        backend="docker",
    )


def _execute(command: list[str], workdir: Path, timeout_s: float, backend: str) -> SandboxResult:
    # Output goes to files, not pipes: RLIMIT_FSIZE bounds it and no straggler holding a
    # pipe open can block us.
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.monotonic()
        proc = subprocess.Popen(
            command,
            cwd=workdir,
            env=_minimal_env(workdir),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
        # Wait without reaping, so the group id cannot be recycled before we kill the group
        # (which also ends stragglers left behind by a command that exited).
        pidfd = os.pidfd_open(proc.pid)
        try:
            timed_out = not select.select([pidfd], [], [], timeout_s)[0]
        finally:
            os.close(pidfd)
        _kill_group(proc.pid)
        proc.wait()
        seconds = time.monotonic() - start
        return SandboxResult(
            returncode=proc.returncode,
            stdout=_tail(out),
            stderr=_tail(err),
            seconds=seconds,
            timed_out=timed_out,
            backend=backend,
        )


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # group already gone
        os.killpg(pgid, signal.SIGKILL)


def _tail(stream: BinaryIO) -> str:
    size = stream.seek(0, os.SEEK_END)
    keep = OUTPUT_LIMIT_CHARS * 4  # bytes; decoded then cut to characters
    stream.seek(max(0, size - keep))
    text = stream.read().decode("utf-8", errors="replace")
    if size > keep or len(text) > OUTPUT_LIMIT_CHARS:
        text = f"[... truncated, {size} bytes in all ...]\n" + text[-OUTPUT_LIMIT_CHARS:]
    return text


def _minimal_env(workdir: Path, path: str = _HOST_PATH) -> dict[str, str]:
    """Never the parent's environment: it holds API keys."""
    return {
        "PATH": path,
        "HOME": str(workdir),
        "LANG": "C.UTF-8",
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


_BWRAP_BASE = ["--die-with-parent", "--new-session", "--ro-bind", "/", "/", "--dev", "/dev"]
_UNSHARE_ALL = ["--unshare-all"]
# Root must stay root of the initial user namespace to switch to an unprivileged uid.
_UNSHARE_BUT_USER = [
    "--unshare-ipc",
    "--unshare-pid",
    "--unshare-net",
    "--unshare-uts",
    "--unshare-cgroup-try",
]


def _bwrap_args(workdir: Path, roots: Sequence[Path], tmp_mb: int, as_other_uid: bool) -> list[str]:
    """bwrap options: read-only host, private /tmp, interpreter and roots visible, workdir rw."""
    unshare = _UNSHARE_BUT_USER if as_other_uid else _UNSHARE_ALL
    args = ["bwrap", *unshare, *_BWRAP_BASE, "--proc", "/proc"]
    for scratch in ("/tmp", "/dev/shm"):  # /dev/shm: joblib and multiprocessing need it
        args += ["--perms", "1777", "--size", str(tmp_mb * 2**20), "--tmpfs", scratch]
    binds = {p.resolve(strict=True): "--ro-bind" for p in roots}
    binds.update({Path(os.path.abspath(p)): "--ro-bind" for p in roots})
    binds[workdir] = "--bind"
    tmpfs = [Path("/tmp")]
    if as_other_uid:
        # Hide folders the uid may not enter (e.g. /root holding a pyenv interpreter) behind
        # an empty tmpfs, then recreate only the paths we bind, traversable.
        for hidden in _closed_ancestors(binds):
            args += ["--perms", "0755", "--tmpfs", str(hidden)]
            tmpfs.append(hidden)
    made: set[Path] = set()
    bound: list[Path] = []
    for path, flag in sorted(binds.items(), key=lambda item: len(item[0].parts)):
        for parent in reversed(path.parents):
            inside = any(parent != t and parent.is_relative_to(t) for t in tmpfs)
            if inside and parent not in made and not any(parent.is_relative_to(b) for b in bound):
                args += ["--perms", "0755", "--dir", str(parent)]  # bwrap would make it 0700
                made.add(parent)
        args += [flag, str(path), str(path)]
        bound.append(path)
    return [*args, "--chdir", str(workdir)]


def _closed_ancestors(paths: Iterable[Path]) -> list[Path]:
    """Outermost folders above `paths` that others cannot traverse, outside /tmp."""
    closed: list[Path] = []
    for path in paths:
        for parent in reversed(path.parents[:-1]):  # skip "/"
            if parent.is_relative_to("/tmp") or any(parent.is_relative_to(c) for c in closed):
                continue
            if not parent.stat().st_mode & stat.S_IXOTH:
                closed.append(parent)
    return closed


def _chown_tree(root: Path, uid: int, gid: int) -> None:
    """lchown root and everything under it; never follows a symlink the sandbox planted."""
    os.chown(root, uid, gid, follow_symlinks=False)
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            os.chown(os.path.join(folder, name), uid, gid, follow_symlinks=False)


def _fresh_uid() -> int:
    """A uid no account and no concurrent sandbox uses, so RLIMIT_NPROC counts one run."""
    return _UID_BASE + (os.getpid() % 100_000) * 1_000 + next(_uid_counter) % 1_000


@functools.cache
def _bwrap_problem() -> str:
    """Why bubblewrap cannot sandbox here ("" if it can). Probed once per process."""
    if shutil.which("bwrap") is None:
        return "bwrap is not installed (apt-get install bubblewrap)"
    try:
        with tempfile.TemporaryDirectory() as folder:
            workdir = Path(folder).resolve()
            args = _bwrap_args(workdir, [], 1, as_other_uid=os.geteuid() == 0)
            probe = subprocess.run(
                [*args, "true"],
                capture_output=True,
                text=True,
                timeout=30,
                env=_minimal_env(workdir),
            )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bwrap probe failed: {exc}"
    if probe.returncode != 0:
        return f"bwrap probe exited {probe.returncode}: {probe.stderr.strip()[-500:]}"
    return ""


@functools.cache
def _warn_not_isolated(reason: str) -> None:
    log.warning(
        "sandbox backend 'rlimit' (%s): untrusted code runs with resource limits only and is "
        "NOT isolated (it can use the network and write wherever this user can)",
        reason,
    )
