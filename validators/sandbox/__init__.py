"""Run untrusted code (baselines, generated solutions, evaluator checks) so it cannot reach
the host: no network, no host files but the interpreter and libraries, no parent
environment, whole-run limits, a size-limited task folder, outputs read back safely.

Backends (chosen in `backends`; `SANDFORGE_SANDBOX` or `sandforge generate --sandbox`):
- "bubblewrap" (default where it works): an empty root with only what the run needs, fresh
  namespaces, a seccomp filter, a cgroup per run; see `bwrap`, `syscall_filter`, `cgroup`.
- "docker" (production; chosen by auto when bubblewrap is missing): a throw-away container
  per run, removed even when its parent dies; see `docker_backend`.
- "rlimit": resource limits only, NOT isolated; only when asked for, and it says so on stderr.
With neither isolating backend usable and no explicit rlimit, every run raises
SandboxConfigError saying how to install one: the sandbox fails closed.

Every backend runs the command in a copy of its workdir (`taskdir`) and returns the named
outputs; resource limits are set by a tiny launcher (`python -I -S`, `core.LAUNCHER`) that
execs the command, not by `preexec_fn`, which can deadlock when the parent has threads
(Prefect runs tasks in threads). As root, the command runs as a fresh unprivileged uid per
run (RLIMIT_NPROC never applies to uid 0, and a uid of its own reads nothing of the host's).
"""

from sandforge.validators.sandbox.backends import sandbox_backend, warn_not_isolated
from sandforge.validators.sandbox.core import (
    AUTO,
    BACKENDS,
    ENV_VAR,
    ISOLATING,
    OUTPUT_LIMIT_CHARS,
    PYTHON,
    SandboxConfigError,
    SandboxResult,
)
from sandforge.validators.sandbox.run import run_sandboxed

__all__ = [
    "AUTO",
    "BACKENDS",
    "ENV_VAR",
    "ISOLATING",
    "OUTPUT_LIMIT_CHARS",
    "PYTHON",
    "SandboxConfigError",
    "SandboxResult",
    "run_sandboxed",
    "sandbox_backend",
    "warn_not_isolated",
]
