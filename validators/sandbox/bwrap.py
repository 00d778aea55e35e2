"""The bubblewrap backend's command line: an empty root with only what the run needs.

Inside, `/` is an empty tmpfs holding, read-only: the shared libraries (/usr/lib, /lib, ...
as the host lays them out), this interpreter's installation (its prefix, or only its
executable and stdlib when the prefix is /usr), the venv with its site-packages (numpy,
pandas, scikit-learn), and the caller's read-only folders; read-write only the task folder
(see taskdir), at the caller's workdir path. Not /etc, not /home or /root (beyond the
interpreter's own folder), not the repository, the S3 data or the docker socket. A fresh
/proc (new pid namespace: no host process is visible), a minimal /dev, a private /tmp and
/dev/shm of max_file_mb each. Fresh network (loopback only), ipc, uts, cgroup namespaces;
all capabilities dropped but the two the launcher needs to switch to the run's uid; the
seccomp filter of syscall_filter; --die-with-parent and --new-session.

As root, bwrap keeps the initial user namespace (root must stay root there to switch uid);
the launcher then drops to a fresh unprivileged uid, which clears those two capabilities.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from sandforge.validators.sandbox import syscall_filter
from sandforge.validators.sandbox.core import minimal_env

# Where a Linux system keeps shared libraries; each is bound if it is a folder, recreated if a
# symlink (merged /usr: /lib -> usr/lib).
LIBRARY_DIRS = (
    "/lib",
    "/lib64",
    "/lib32",
    "/libx32",
    "/usr/lib",
    "/usr/lib64",
    "/usr/lib32",
    "/usr/libx32",
    "/usr/local/lib",
)
_SHARED_PREFIXES = (Path("/"), Path("/usr"), Path("/usr/local"))  # never bound whole
_NAMESPACES = ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts"]
_NAMESPACES += ["--unshare-cgroup-try"]
_KEPT_CAPS = ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]


def bwrap_args(
    *,
    workdir: Path,
    task_folder: Path,
    readonly: Sequence[Path],
    tmp_mb: int,
    seccomp_fd: int,
    as_root: bool,
) -> list[str]:
    """bwrap's options; the command follows them."""
    args = ["bwrap", "--die-with-parent", "--new-session", *_NAMESPACES]
    if as_root:
        args += _KEPT_CAPS
    else:
        args += ["--unshare-user", "--disable-userns"]
    args += ["--tmpfs", "/", "--dev", "/dev", "--proc", "/proc"]
    for scratch in ("/tmp", "/dev/shm"):  # /dev/shm: joblib and multiprocessing need it
        args += ["--perms", "1777", "--size", str(tmp_mb * 2**20), "--tmpfs", scratch]
    visible: set[Path] = {*interpreter_paths(), *_with_aliases(readonly)}
    for name in LIBRARY_DIRS:
        path = Path(name)
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), name]
        elif path.is_dir():
            visible.add(path)
    binds = {path: ["--ro-bind", str(path), str(path)] for path in _outermost(visible)}
    binds[workdir] = ["--bind", str(task_folder), str(workdir)]
    made: set[Path] = {Path("/"), Path("/tmp"), Path("/dev"), Path("/proc")}
    for path in sorted(binds, key=lambda p: len(p.parts)):
        for parent in reversed(path.parents):
            if parent not in made and not any(parent.is_relative_to(b) for b in binds):
                args += ["--perms", "0755", "--dir", str(parent)]  # bwrap would make it 0700
                made.add(parent)
        args += binds[path]
    # The launcher enters workdir once it is the run's uid: bwrap's root lacks the right to.
    return [*args, "--seccomp", str(seccomp_fd), "--chdir", "/"]


@functools.cache
def interpreter_paths() -> tuple[Path, ...]:
    """What this Python needs to start and import the ladder's libraries: the venv (its
    site-packages), the base installation, every link on the way to the executable."""
    paths: set[Path] = {Path(sys.prefix)}
    for prefix in {Path(sys.base_prefix), Path(sys.exec_prefix), Path(sys.base_exec_prefix)}:
        if prefix.resolve() not in _SHARED_PREFIXES:
            paths.add(prefix)
    for scheme in ("stdlib", "platstdlib", "purelib", "platlib"):
        for variables in ({}, {"base": sys.base_prefix, "platbase": sys.base_exec_prefix}):
            paths.add(Path(sysconfig.get_path(scheme, vars=variables)))
    link = Path(sys.executable)
    for _ in range(40):  # the venv's python -> python3 -> /opt/.../python3.11
        paths.add(link)
        if not link.is_symlink():
            break
        link = link.parent / os.readlink(link)
    return tuple(p for p in _with_aliases(paths) if p.exists())


def _with_aliases(paths: Iterable[Path]) -> set[Path]:
    """Each path as given (absolute) and resolved: both spellings must exist inside."""
    found: set[Path] = set()
    for path in paths:
        found.add(Path(os.path.abspath(path)))
        found.add(path.resolve())
    return found


def _outermost(paths: Iterable[Path]) -> list[Path]:
    """Drop paths inside another one of the set (the outer bind already shows them)."""
    ordered = sorted(paths, key=lambda p: len(p.parts))
    kept: list[Path] = []
    for path in ordered:
        if not any(path.is_relative_to(k) for k in kept):
            kept.append(path)
    return kept


@functools.cache
def problem() -> str:
    """Why bubblewrap cannot sandbox here ("" if it can). Probed once per process."""
    if shutil.which("bwrap") is None:
        return "bwrap is not installed (apt-get install bubblewrap)"
    try:
        seccomp_fd = syscall_filter.program_fd()
    except syscall_filter.FilterUnavailable as exc:
        return str(exc)
    try:
        with tempfile.TemporaryDirectory() as folder:
            workdir = Path(folder).resolve()
            args = bwrap_args(
                workdir=workdir,
                task_folder=workdir,
                readonly=(),
                tmp_mb=1,
                seccomp_fd=seccomp_fd,
                as_root=os.geteuid() == 0,
            )
            probe = subprocess.run(
                [*args, sys.executable, "-I", "-S", "-c", "pass"],
                capture_output=True,
                text=True,
                timeout=30,
                env=minimal_env(workdir),
                pass_fds=(seccomp_fd,),
            )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bwrap probe failed: {exc}"
    finally:
        os.close(seccomp_fd)
    if probe.returncode != 0:
        return f"bwrap probe exited {probe.returncode}: {probe.stderr.strip()[-500:]}"
    return ""
