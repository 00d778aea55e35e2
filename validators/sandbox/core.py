"""What every sandbox backend shares: names, limits, the result, the launcher, the environment.

This module imports nothing else of the sandbox package, so every backend module can import
it without an import cycle.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

BACKENDS = ("bubblewrap", "docker", "rlimit")
ISOLATING = ("bubblewrap", "docker")
ENV_VAR = "SANDFORGE_SANDBOX"
AUTO = "auto"
PYTHON = "python"  # argv[0] meaning "the sandbox's Python interpreter"
DOCKER_PYTHON = "python3"  # the sandbox image's, on its PATH
# argv[0] values resolved to the backend's interpreter. This process's own path is one: callers
# written for the host backends pass it, and it does not exist in the docker image.
PYTHON_ALIASES = frozenset({PYTHON, sys.executable})
OUTPUT_LIMIT_CHARS = 20_000  # tail of stdout/stderr kept in a SandboxResult
HOST_PATH = f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin"
INSTALL_HINT = (
    "install bubblewrap and libseccomp2 (apt-get install bubblewrap libseccomp2, or "
    "scripts/install.sh as root), or start docker with the sandbox image (scripts/docker.sh); "
    f"to run untrusted code with resource limits only (NOT isolated) pass --sandbox rlimit "
    f"or set {ENV_VAR}=rlimit"
)

# Runs inside the sandbox, before the untrusted command, with the interpreter in isolated
# mode (-I -S). Its arguments up to "--" are settings (NAME=value; no json: importing it would
# cost every run ~10 ms): rlimits (RLIMIT_*), the unprivileged uid to drop to, the folder to
# enter as that uid (the task folder is its own, mode 0700), and a seccomp program (hex;
# libseccomp's output, see syscall_filter) to load on top of whatever filter the backend
# already applies. Then it becomes the command after "--".
LAUNCHER = """\
import os, resource, sys
split = sys.argv.index("--")
setup = dict(arg.partition("=")[::2] for arg in sys.argv[1:split])
for name, value in setup.items():
    if name.startswith("RLIMIT_"):
        res, value = getattr(resource, name), int(value)
        _, hard = resource.getrlimit(res)
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        # CPU: SIGXCPU at the soft limit, SIGKILL one second later.
        cap = value + 1 if name == "RLIMIT_CPU" and hard == resource.RLIM_INFINITY else value
        resource.setrlimit(res, (value, cap))
if "uid" in setup:
    uid = int(setup["uid"])
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
if "cwd" in setup:
    os.chdir(setup["cwd"])
if "seccomp" in setup:
    import ctypes
    class Program(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]
    code = ctypes.create_string_buffer(bytes.fromhex(setup["seccomp"]))
    program = Program(len(code.raw) // 8, ctypes.addressof(code))
    libc = ctypes.CDLL(None, use_errno=True)
    # PR_SET_NO_NEW_PRIVS, then PR_SET_SECCOMP with SECCOMP_MODE_FILTER
    if libc.prctl(38, 1, 0, 0, 0) or libc.prctl(22, 2, ctypes.byref(program), 0, 0):
        raise OSError(ctypes.get_errno(), "cannot load the seccomp filter")
os.execvp(sys.argv[split + 1], sys.argv[split + 1:])
"""


class SandboxConfigError(RuntimeError):
    """The requested backend is unknown or cannot run here; nothing was run."""


@dataclass(frozen=True)
class Limits:
    """What one run may use. memory_mb and max_procs hold for the whole run where a cgroup
    (or the container) exists, and per process always; max_file_mb bounds each written file,
    /tmp, /dev/shm and each output read back; disk_mb the task folder as a whole."""

    timeout_s: float
    memory_mb: int = 2048
    cpu_s: int | None = None
    max_procs: int = 64
    max_file_mb: int = 64
    disk_mb: int = 256

    def rlimits(self, *, nproc: bool) -> dict[str, int]:
        """The launcher's rlimits; nproc=False leaves the process count to the container."""
        limits = {
            "RLIMIT_AS": self.memory_mb * 2**20,
            "RLIMIT_FSIZE": self.max_file_mb * 2**20,
            "RLIMIT_CORE": 0,  # no core dumps in the task folder
        }
        if self.cpu_s is not None:
            limits["RLIMIT_CPU"] = self.cpu_s
        if nproc:
            limits["RLIMIT_NPROC"] = self.max_procs
        return limits


def launcher(
    python: str,
    limits: dict[str, int],
    *,
    uid: int | None = None,
    cwd: Path | None = None,
    seccomp: bytes = b"",
) -> list[str]:
    """argv prefix that sets the run up (see LAUNCHER) and then execs what follows it."""
    settings = [f"{name}={value}" for name, value in limits.items()]
    if uid is not None:
        settings.append(f"uid={uid}")
    if cwd is not None:
        settings.append(f"cwd={cwd}")
    if seccomp:
        settings.append(f"seccomp={seccomp.hex()}")
    return [python, "-I", "-S", "-c", LAUNCHER, *settings, "--"]


@dataclass(frozen=True)
class SandboxResult:
    """One run. `outputs` holds the requested files read back from the task folder (regular
    files only, never through a link); `refused_outputs` says why any other was not."""

    returncode: int
    stdout: str
    stderr: str
    seconds: float
    timed_out: bool
    backend: str
    outputs: Mapping[str, bytes] = field(default_factory=dict)
    refused_outputs: Mapping[str, str] = field(default_factory=dict)


def tail(stream: BinaryIO) -> str:
    """The last OUTPUT_LIMIT_CHARS characters of a captured stream, marked when cut."""
    size = stream.seek(0, os.SEEK_END)
    keep = OUTPUT_LIMIT_CHARS * 4  # bytes; decoded then cut to characters
    stream.seek(max(0, size - keep))
    text = stream.read().decode("utf-8", errors="replace")
    if size > keep or len(text) > OUTPUT_LIMIT_CHARS:
        text = f"[... truncated, {size} bytes in all ...]\n" + text[-OUTPUT_LIMIT_CHARS:]
    return text


def minimal_env(workdir: Path, path: str = HOST_PATH) -> dict[str, str]:
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


def process_start(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (None if it is gone): with the pid
    it names one process for good, so a recycled pid is not mistaken for its old owner."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def owner_tag(pid: int | None = None) -> str:
    """`<pid>-<start time>` of this (or the given) process, for naming what a run leaves."""
    pid = os.getpid() if pid is None else pid
    return f"{pid}-{process_start(pid)}"


def owner_alive(tag: str) -> bool:
    """Whether the process an owner_tag names still runs."""
    pid, _, start = tag.partition("-")
    return pid.isdigit() and str(process_start(int(pid))) == start
