"""Run one host command (bwrap, or the launcher itself under rlimit) with a wall-clock timeout."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sandforge.validators.sandbox.core import tail


@dataclass(frozen=True)
class Finished:
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    timed_out: bool


def execute(
    command: list[str],
    *,
    cwd: Path,
    env: dict[str, str],
    timeout_s: float,
    pass_fds: Sequence[int] = (),
    before_reap: Callable[[], None] = lambda: None,
) -> Finished:
    """Run command in a new session; at exit or timeout SIGKILL its process group, then call
    before_reap (the cgroup's kill: daemons that left the group) and reap."""
    # Output goes to files, not pipes: RLIMIT_FSIZE bounds it and no straggler holding a
    # pipe open can block us.
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.monotonic()
        proc = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
            pass_fds=tuple(pass_fds),
        )
        # Wait without reaping, so the group id cannot be recycled before we kill the group
        # (which also ends stragglers left behind by a command that exited).
        pidfd = os.pidfd_open(proc.pid)
        try:
            timed_out = not select.select([pidfd], [], [], timeout_s)[0]
        finally:
            os.close(pidfd)
        with contextlib.suppress(ProcessLookupError, PermissionError):  # group already gone
            os.killpg(proc.pid, signal.SIGKILL)
        before_reap()
        proc.wait()
        return Finished(
            returncode=proc.returncode,
            stdout=tail(out),
            stderr=tail(err),
            seconds=time.monotonic() - start,
            timed_out=timed_out,
        )
