"""`run_sandboxed`: one untrusted command, under the chosen backend, in a task folder."""

from __future__ import annotations

import dataclasses
import io
import itertools
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from sandforge.validators.sandbox import bwrap, syscall_filter
from sandforge.validators.sandbox.backends import sandbox_backend
from sandforge.validators.sandbox.cgroup import RunCgroup
from sandforge.validators.sandbox.core import (
    DOCKER_PYTHON,
    PYTHON_ALIASES,
    Limits,
    SandboxResult,
    launcher,
    minimal_env,
    tail,
)
from sandforge.validators.sandbox.process import execute
from sandforge.validators.sandbox.taskdir import TaskFolder, check_output_names

_UID_BASE = 1_900_000_000  # far above real accounts; below 2**31 for tools that use int32
_uid_counter = itertools.count()


def run_sandboxed(
    argv: list[str],
    *,
    workdir: Path,
    timeout_s: float,
    memory_mb: int = 2048,
    cpu_s: int | None = None,
    max_procs: int = 64,
    max_file_mb: int = 64,
    disk_mb: int = 256,
    readonly_dirs: Sequence[Path] = (),
    outputs: Sequence[str] = (),
) -> SandboxResult:
    """Run argv in a copy of workdir under the limits; kill the whole run at timeout_s.

    argv[0] == PYTHON (or sys.executable) runs the backend's interpreter. The command sees
    a size-limited copy of workdir at workdir's path (disk_mb in all) and never writes the
    real one; the files named in `outputs` come back in result.outputs (see taskdir).
    memory_mb and max_procs bound the whole run (cgroup or container) and each process;
    max_file_mb each written file, /tmp and /dev/shm, and each output. cpu_s=None leaves CPU
    time to the wall clock. readonly_dirs must be visible inside (e.g. a script's folder);
    the interpreter and its libraries always are. returncode is -N (bubblewrap, rlimit) or
    128+N (docker) when signal N ended the command.
    """
    names = tuple(outputs)
    check_output_names(names)
    backend = sandbox_backend()
    limits = Limits(timeout_s, memory_mb, cpu_s, max_procs, max_file_mb, disk_mb)
    workdir = workdir.resolve(strict=True)
    python = DOCKER_PYTHON if backend == "docker" else sys.executable
    argv = [python if i == 0 and arg in PYTHON_ALIASES else arg for i, arg in enumerate(argv)]
    uid = _fresh_uid() if backend != "rlimit" and os.geteuid() == 0 else None
    with TaskFolder(workdir, disk_mb, uid) as folder:
        run = _Run(argv, workdir, folder.path, tuple(readonly_dirs), uid, limits)
        result = _run_docker(run) if backend == "docker" else _run_host(run, backend)
        read, refused = folder.read_outputs(names, max_file_mb * 2**20)
    return dataclasses.replace(result, outputs=read, refused_outputs=refused)


@dataclasses.dataclass(frozen=True)
class _Run:
    """One run's command and where it runs: what every backend is handed."""

    argv: list[str]
    workdir: Path
    task_folder: Path
    readonly_dirs: tuple[Path, ...]
    uid: int | None
    limits: Limits


def _run_host(run: _Run, backend: str) -> SandboxResult:
    """bubblewrap or rlimit: a launcher process on this host, in a cgroup where one exists."""
    limits = run.limits
    # rlimit cannot remap paths: it runs in the task folder itself, a sibling of workdir, so
    # paths relative to workdir (../private/...) still resolve.
    inside = run.workdir if backend == "bubblewrap" else run.task_folder
    rlimits = limits.rlimits(nproc=True)
    command = [*launcher(sys.executable, rlimits, uid=run.uid, cwd=inside), *run.argv]
    fds: tuple[int, ...] = ()
    if backend == "bubblewrap":
        fds = (syscall_filter.program_fd(),)
        prefix = bwrap.bwrap_args(
            workdir=run.workdir,
            task_folder=run.task_folder,
            readonly=run.readonly_dirs,
            tmp_mb=limits.max_file_mb,
            seccomp_fd=fds[0],
            as_root=os.geteuid() == 0,
        )
        command = prefix + command
    cgroup = RunCgroup.create(limits.memory_mb, limits.max_procs)
    try:
        if cgroup is not None:
            command = cgroup.join_prefix() + command
        finished = execute(
            command,
            cwd=run.task_folder,
            env=minimal_env(inside),
            timeout_s=limits.timeout_s,
            pass_fds=fds,
            before_reap=cgroup.kill if cgroup else lambda: None,
        )
        oom = cgroup is not None and cgroup.oom_killed()
    finally:
        for fd in fds:
            os.close(fd)
        if cgroup is not None:
            cgroup.remove()
    return SandboxResult(
        returncode=finished.returncode,
        stdout=finished.stdout,
        stderr=finished.stderr + _oom_note(oom, limits),
        seconds=finished.seconds,
        timed_out=finished.timed_out,
        backend=backend,
    )


def _run_docker(run: _Run) -> SandboxResult:
    from sandforge.validators.sandbox import docker_backend

    limits, uid = run.limits, run.uid

    # The container runs as the run's uid already and its pids limit replaces RLIMIT_NPROC
    # (exact per run). Docker's default seccomp profile allows some of what ours refuses
    # (io_uring, ptrace, ...): the launcher stacks our filter on it.
    rlimits = limits.rlimits(nproc=False)
    seccomp = syscall_filter.bpf_program()
    command = [*launcher(DOCKER_PYTHON, rlimits, seccomp=seccomp), *run.argv]
    user = f"{uid}:{uid}" if uid is not None else f"{os.getuid()}:{os.getgid()}"
    status, stdout, stderr, seconds, timed_out, oom = docker_backend.run(
        command,
        workdir=run.workdir,
        task_folder=run.task_folder,
        readonly_dirs=run.readonly_dirs,
        env=minimal_env(run.workdir, docker_backend.PATH),
        user=user,
        limits=limits,
    )
    return SandboxResult(
        returncode=status,
        stdout=tail(io.BytesIO(stdout)),
        stderr=tail(io.BytesIO(stderr + _oom_note(oom, limits).encode())),
        seconds=seconds,
        timed_out=timed_out,
        backend="docker",
    )


def _oom_note(oom: bool, limits: Limits) -> str:
    if not oom:
        return ""
    return f"\n[sandbox: a process was killed by the run's {limits.memory_mb} MB memory limit]\n"


def _fresh_uid() -> int:
    """A uid no account and no concurrent sandbox uses, so RLIMIT_NPROC counts one run."""
    return _UID_BASE + (os.getpid() % 100_000) * 1_000 + next(_uid_counter) % 1_000
