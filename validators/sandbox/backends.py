"""Which backend runs untrusted code: an isolating one, or an explicit, loud opt-out.

`SANDFORGE_SANDBOX` (or `sandforge generate --sandbox`) is `auto` (the default), `bubblewrap`,
`docker` or `rlimit`. auto takes bubblewrap if it works here, else docker if its daemon and
image are ready, else refuses (SandboxConfigError saying how to install one): it never falls
back to running untrusted code unisolated. `rlimit` (resource limits only) must be asked
for, and says on stderr, once per process, that the code is NOT isolated.
"""

from __future__ import annotations

import functools
import logging
import os
import sys

from sandforge.validators.sandbox import bwrap, syscall_filter
from sandforge.validators.sandbox.core import (
    AUTO,
    BACKENDS,
    ENV_VAR,
    INSTALL_HINT,
    SandboxConfigError,
)

log = logging.getLogger(__name__)
CHOICES = (AUTO, *BACKENDS)


def sandbox_backend() -> str:
    """The backend `run_sandboxed` uses now (the env var is read on every call)."""
    choice = os.environ.get(ENV_VAR, "").strip() or AUTO
    if choice not in CHOICES:
        raise SandboxConfigError(f"{ENV_VAR}={choice!r}: expected one of {', '.join(CHOICES)}")
    if choice == "rlimit":
        warn_not_isolated(f"chosen with {ENV_VAR}=rlimit or --sandbox rlimit")
        return "rlimit"
    problems = {}
    for backend in ("bubblewrap", "docker"):
        if choice not in (AUTO, backend):
            continue
        problem = bwrap.problem() if backend == "bubblewrap" else _docker_problem()
        if not problem:
            return backend
        if choice == backend:
            raise SandboxConfigError(f"{ENV_VAR}={backend} but {backend} is unusable: {problem}")
        problems[backend] = problem
    found = "; ".join(f"{name}: {problem}" for name, problem in problems.items())
    raise SandboxConfigError(
        f"no isolating sandbox backend is usable here ({found}). To run baselines, {INSTALL_HINT}"
    )


def _docker_problem() -> str:
    try:
        syscall_filter.bpf_program()  # stacked on docker's own profile by the launcher
        from sandforge.validators.sandbox import docker_backend
    except syscall_filter.FilterUnavailable as exc:
        return str(exc)
    except ImportError as exc:
        return f"the docker SDK cannot be imported ({exc})"
    return docker_backend.problem()


@functools.cache
def warn_not_isolated(reason: str) -> None:
    """On the terminal, not only in logs: this run gives up isolation."""
    message = (
        f"sandbox backend 'rlimit' ({reason}): untrusted code runs with resource limits only "
        "and is NOT isolated (it can use the network, read what this user can read and see "
        "the parent's environment through /proc)"
    )
    sys.stderr.write(f"warning: {message}\n")
    sys.stderr.flush()
    log.warning(message)
