"""The "docker" sandbox backend: one throw-away container per run (production).

The container has no network (network_mode="none"), a read-only root filesystem, no
capabilities, no-new-privileges, a non-root uid, a small tmpfs /tmp and /dev/shm, and cgroup
limits on memory (no swap), CPU and process count. Only `workdir` is bound read-write and the
`readonly_dirs` read-only, each at its host path, so paths in argv mean the same inside. The
per-process rlimits of `validators.sandbox` are applied too, by the same launcher run with the
image's python3, so a memory hog gets a MemoryError under every backend.

The image (`SANDFORGE_SANDBOX_IMAGE`, default sandforge-sandbox:bookworm) supplies python3
with numpy, pandas and scikit-learn: build it with scripts/docker.sh (debootstrap + docker
import, no registry needed) or deploy/sandbox-image/Dockerfile.

Bind mounts name host paths: the docker daemon must see `workdir` and `readonly_dirs` at the
same paths as this process (true when sandforge runs on the docker host; when it runs in a
container itself, mount its work and code folders at identical paths).

Only `validators.sandbox` imports this module (lazily: the docker SDK costs ~0.1 s to import).
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import docker
import docker.errors
import requests.exceptions
from docker.types import LogConfig
from sandforge.validators.sandbox import SandboxConfigError

if TYPE_CHECKING:
    from docker.models.containers import Container

IMAGE_ENV = "SANDFORGE_SANDBOX_IMAGE"
DEFAULT_IMAGE = "sandforge-sandbox:bookworm"
CPUS_ENV = "SANDFORGE_SANDBOX_CPUS"
DEFAULT_CPUS = 1.0  # baselines are single-threaded (OMP_NUM_THREADS=1)
PATH = "/usr/local/bin:/usr/bin:/bin"
LABEL = "sandforge.sandbox"
BUILD_HINT = "scripts/docker.sh (or: docker build -t {image} deploy/sandbox-image)"
_API_TIMEOUT_S = 60  # create/start/remove; waiting uses the run's own timeout


def image() -> str:
    return os.environ.get(IMAGE_ENV, "").strip() or DEFAULT_IMAGE


def problem() -> str:
    """Why the docker backend cannot run here ("" if it can): daemon down or image missing."""
    name = image()
    _cpus()  # raises on a bad setting
    try:
        client = _client()
    except docker.errors.DockerException as exc:
        host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        return (
            f"the docker daemon at {host} is unreachable ({_first_line(exc)}); "
            f"start it and build the image {name!r} with {BUILD_HINT.format(image=name)}"
        )
    try:
        client.images.get(name)
    except docker.errors.ImageNotFound:
        return f"the sandbox image {name!r} is missing; build it with " + BUILD_HINT.format(
            image=name
        )
    except docker.errors.DockerException as exc:
        return f"cannot inspect the sandbox image {name!r}: {_first_line(exc)}"
    finally:
        client.close()
    return ""


def run(
    command: list[str],
    *,
    workdir: Path,
    readonly_dirs: Sequence[Path],
    env: dict[str, str],
    user: str,
    timeout_s: float,
    memory_mb: int,
    max_procs: int,
    max_file_mb: int,
) -> tuple[int, bytes, bytes, float, bool, str]:
    """Run command in a fresh container; kill it at timeout_s and always remove it.

    Returns (exit status, stdout, stderr, seconds, timed out, note). The exit status is
    docker's: 128+N when a signal N ended the process. note explains a cgroup OOM kill.
    """
    modes = {path.resolve(strict=True): "ro" for path in readonly_dirs}
    modes[workdir] = "rw"
    volumes = {str(path): {"bind": str(path), "mode": mode} for path, mode in modes.items()}
    scratch = f"rw,nosuid,nodev,size={max_file_mb}m,mode=1777"
    client = _client()
    container: Container | None = None
    try:
        container = client.containers.create(
            image(),
            command,
            name=f"sandforge-sandbox-{uuid.uuid4().hex[:12]}",
            labels={LABEL: "1"},
            user=user,
            working_dir=str(workdir),
            environment=env,
            hostname="sandbox",
            network_mode="none",
            ipc_mode="private",
            read_only=True,
            tmpfs={"/tmp": scratch},
            shm_size=max_file_mb * 2**20,
            volumes=volumes,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            init=True,  # reaps zombies; signals behave as for any process, not a pid 1
            mem_limit=memory_mb * 2**20,
            memswap_limit=memory_mb * 2**20,  # no swap
            nano_cpus=int(_cpus() * 1e9),
            pids_limit=max_procs,
            # Two files of max_file_mb: at least that much of the output's tail survives.
            log_config=LogConfig(
                type="json-file", config={"max-size": f"{max_file_mb}m", "max-file": "2"}
            ),
            stdin_open=False,
            tty=False,
        )
        start = time.monotonic()
        container.start()
        timed_out = False
        try:
            status = container.wait(timeout=max(timeout_s, 0.001))["StatusCode"]
        except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
            timed_out = True
            with contextlib.suppress(docker.errors.APIError):  # it may have just exited
                container.kill()
            status = container.wait(timeout=_API_TIMEOUT_S)["StatusCode"]
        seconds = time.monotonic() - start
        stdout = container.logs(stdout=True, stderr=False)
        stderr = container.logs(stdout=False, stderr=True)
        container.reload()
        note = ""
        if container.attrs["State"].get("OOMKilled"):
            note = f"\n[sandbox: killed by the container's {memory_mb} MB memory limit]\n"
        return status, stdout, stderr, seconds, timed_out, note
    finally:
        if container is not None:
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True, v=True)
        client.close()


def _client() -> docker.DockerClient:
    client = docker.from_env(timeout=_API_TIMEOUT_S)  # version="auto": asks the daemon
    try:
        client.ping()
    except Exception:
        client.close()
        raise
    return client


def _cpus() -> float:
    raw = os.environ.get(CPUS_ENV, "").strip()
    try:
        cpus = float(raw) if raw else DEFAULT_CPUS
    except ValueError:
        cpus = 0
    if not 0 < cpus <= (os.cpu_count() or 1):
        raise SandboxConfigError(f"{CPUS_ENV}={raw!r}: expected 0 < CPUs <= {os.cpu_count()}")
    return cpus


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
