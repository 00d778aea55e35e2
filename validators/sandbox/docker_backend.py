"""The "docker" sandbox backend: one throw-away container per run.

The container has no network (network_mode="none"), a read-only root filesystem, no
capabilities, no-new-privileges, the daemon's default seccomp profile (a daemon without
seccomp is refused), a private pid namespace, a fresh non-root uid, a small tmpfs /tmp and
/dev/shm, and cgroup limits on memory (no swap), CPU and process count. The task folder (a
size-limited tmpfs, see taskdir) is bound read-write at the caller's workdir path, the
read-only folders read-only at their own paths, so paths in argv mean the same inside. The
per-process rlimits of the launcher apply too, so a memory hog gets a MemoryError under every
backend.

No container outlives its parent: each carries the labels `sandforge.sandbox=1` and
`sandforge.sandbox.owner=<host>:<boot id>:<pid>-<start time>`; a watchdog process per
parent (started with the first run, in its own session) removes the parent's containers as
soon as the parent dies, however it dies; and the first run of every process removes the
containers of owners on this host that are gone (a watchdog killed too, a reboot).

The image (`SANDFORGE_SANDBOX_IMAGE`, default sandforge-sandbox:bookworm) supplies python3
with numpy, pandas and scikit-learn: build it with scripts/docker.sh (debootstrap + docker
import, no registry needed) or deploy/sandbox-image/Dockerfile. Bind mounts name host paths:
the daemon must see this machine's folders at the same paths (run sandforge on the docker
host, or mount its work and code folders at identical paths into its container).

Imported lazily by the sandbox package: the docker SDK costs ~0.1 s to import.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import docker
import docker.errors
import requests.exceptions
from docker.types import LogConfig
from sandforge.validators.sandbox.core import (
    Limits,
    SandboxConfigError,
    owner_alive,
    owner_tag,
)

if TYPE_CHECKING:
    from docker.models.containers import Container

IMAGE_ENV = "SANDFORGE_SANDBOX_IMAGE"
DEFAULT_IMAGE = "sandforge-sandbox:bookworm"
CPUS_ENV = "SANDFORGE_SANDBOX_CPUS"
DEFAULT_CPUS = 1.0  # baselines are single-threaded (OMP_NUM_THREADS=1)
PATH = "/usr/local/bin:/usr/bin:/bin"
LABEL = "sandforge.sandbox"
OWNER_LABEL = "sandforge.sandbox.owner"
BUILD_HINT = "scripts/docker.sh (or: docker build -t {image} deploy/sandbox-image)"
_API_TIMEOUT_S = 60  # create/start/remove; waiting uses the run's own timeout
_CLIENT_ENV = ("DOCKER_HOST", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_API_VERSION")
_lock = threading.Lock()
_prepared_for: int | None = None  # pid that swept stale containers and started a watchdog

# Waits for the parent to die, then removes its containers. Runs in its own session, so the
# parent's process group being killed does not end it.
WATCHDOG = f"""\
import os, select, sys
parent, owner = int(sys.argv[1]), sys.argv[2]
try:
    select.select([os.pidfd_open(parent)], [], [])
except ProcessLookupError:
    pass
import docker, docker.errors
client = docker.from_env(timeout={_API_TIMEOUT_S}).api
for container in client.containers(all=True, filters={{"label": "{OWNER_LABEL}=" + owner}}):
    try:
        client.remove_container(container["Id"], force=True, v=True)
    except docker.errors.NotFound:
        pass
"""


def image() -> str:
    return os.environ.get(IMAGE_ENV, "").strip() or DEFAULT_IMAGE


def problem() -> str:
    """Why the docker backend cannot run here ("" if it can): daemon down, no seccomp,
    image missing."""
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
        options = client.info().get("SecurityOptions") or []
        if not any(option.startswith("name=seccomp") for option in options):
            return "the docker daemon runs containers without seccomp; enable it in dockerd"
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
    task_folder: Path,
    readonly_dirs: Sequence[Path],
    env: dict[str, str],
    user: str,
    limits: Limits,
) -> tuple[int, bytes, bytes, float, bool, bool]:
    """Run command in a fresh container; kill it at the timeout and always remove it.

    Returns (exit status, stdout, stderr, seconds, timed out, OOM-killed). The exit status
    is docker's: 128+N when a signal N ended the process.
    """
    modes = {path.resolve(strict=True): "ro" for path in readonly_dirs}
    volumes = {str(path): {"bind": str(path), "mode": mode} for path, mode in modes.items()}
    volumes[str(task_folder)] = {"bind": str(workdir), "mode": "rw"}
    scratch = f"rw,nosuid,nodev,size={limits.max_file_mb}m,mode=1777"
    memory = limits.memory_mb * 2**20
    client = _client()
    _prepare(client)
    container: Container | None = None
    try:
        container = client.containers.create(
            image(),
            command,
            name=f"sandforge-sandbox-{uuid.uuid4().hex[:12]}",
            labels={LABEL: "1", OWNER_LABEL: owner()},
            user=user,
            working_dir=str(workdir),
            environment=env,
            hostname="sandbox",
            network_mode="none",
            ipc_mode="private",
            read_only=True,
            tmpfs={"/tmp": scratch},
            shm_size=limits.max_file_mb * 2**20,
            volumes=volumes,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            init=True,  # reaps zombies; signals behave as for any process, not a pid 1
            mem_limit=memory,
            memswap_limit=memory,  # no swap
            nano_cpus=int(_cpus() * 1e9),
            pids_limit=limits.max_procs,
            # Two files of max_file_mb: at least that much of the output's tail survives.
            log_config=LogConfig(
                type="json-file", config={"max-size": f"{limits.max_file_mb}m", "max-file": "2"}
            ),
            stdin_open=False,
            tty=False,
        )
        start = time.monotonic()
        container.start()
        timed_out = False
        try:
            status = container.wait(timeout=max(limits.timeout_s, 0.001))["StatusCode"]
        except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
            timed_out = True
            with contextlib.suppress(docker.errors.APIError):  # it may have just exited
                container.kill()
            status = container.wait(timeout=_API_TIMEOUT_S)["StatusCode"]
        seconds = time.monotonic() - start
        stdout = container.logs(stdout=True, stderr=False)
        stderr = container.logs(stdout=False, stderr=True)
        container.reload()
        oom = bool(container.attrs["State"].get("OOMKilled"))
        return status, stdout, stderr, seconds, timed_out, oom
    finally:
        if container is not None:
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True, v=True)
        client.close()


def _prepare(client: docker.DockerClient) -> None:
    """Once per process: remove stale containers of this host, start the watchdog."""
    global _prepared_for
    with _lock:
        if _prepared_for == os.getpid():
            return
        remove_stale(client)
        subprocess.Popen(
            [sys.executable, "-I", "-c", WATCHDOG, str(os.getpid()), owner()],
            env={k: v for k, v in os.environ.items() if k in _CLIENT_ENV or k == "PATH"},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        _prepared_for = os.getpid()


def remove_stale(client: docker.DockerClient) -> list[str]:
    """Remove labelled containers whose owner on this host is gone; returns their names.
    Containers of other hosts sharing the daemon are left to those hosts."""
    host, boot, _ = owner().split(":", 2)
    removed = []
    # The low-level listing is one call: containers that go away meanwhile cannot break it.
    for container in client.api.containers(all=True, filters={"label": LABEL}):
        label = (container.get("Labels") or {}).get(OWNER_LABEL, "")
        owner_host, owner_boot, tag = ([*label.split(":", 2), "", ""])[:3]
        if owner_host != host:
            continue
        if owner_boot != boot or not owner_alive(tag):
            with contextlib.suppress(docker.errors.NotFound):
                client.api.remove_container(container["Id"], force=True, v=True)
                removed.append(container["Names"][0].lstrip("/"))
    return removed


def owner() -> str:
    """This process, as its containers' owner label names it."""
    boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    return f"{socket.gethostname()}:{boot}:{owner_tag()}"


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
