"""Whole-run memory and process limits: one cgroup per sandboxed run.

Per-process rlimits let 4 children of 1.5 GiB each pass a 2 GiB limit; a cgroup counts the
run as a whole. The run's first process joins the cgroup before it execs bwrap (a tiny
/bin/sh prefix writes its own pid into cgroup.procs: no preexec_fn, which can deadlock a
threaded parent), so every process of the run, daemons included, is in it and is killed with
it.

- cgroup v1 (these machines): the `memory` and `pids` hierarchies, each under this process's
  own cgroup of that hierarchy, so limits set above us still apply.
- cgroup v2 (a unified hierarchy at /sys/fs/cgroup): a child of this process's cgroup with
  the memory and pids controllers enabled in it.
- Neither writable (not root, or no delegation): `RunCgroup.create` returns None and the run
  falls back to per-process RLIMIT_AS and RLIMIT_NPROC (a fresh uid per run makes NPROC count
  that run only). The fallback is documented; it cannot bound the run's total memory.

Cgroups of a parent that died are removed when the next run in any process starts.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from sandforge.validators.sandbox.core import owner_alive, owner_tag

log = logging.getLogger(__name__)

ROOT = Path("/sys/fs/cgroup")
GROUP = "sandforge-sandbox"  # our folder in each hierarchy; runs are its children
_counter = itertools.count()
# Joins every cgroup.procs given before "--", then becomes the command after it.
JOIN = 'while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; shift; exec "$@"'


@dataclass(frozen=True)
class Layout:
    version: int  # 1 or 2
    memory: Path  # where our runs' cgroups go, per controller (the same folder under v2)
    pids: Path


@dataclass
class RunCgroup:
    """One run's cgroup (two folders under v1). Use as a context manager: leaving kills
    whatever still runs in it and removes it."""

    layout: Layout
    folders: tuple[Path, ...]

    @classmethod
    def create(cls, memory_mb: int, max_procs: int) -> RunCgroup | None:
        layout = _layout()
        if layout is None:
            return None
        _remove_stale(layout)
        name = f"run-{owner_tag()}-{next(_counter)}"
        folders = tuple(dict.fromkeys((layout.memory / name, layout.pids / name)))
        try:
            for folder in folders:
                folder.mkdir(parents=True)
            memory = memory_mb * 2**20
            if layout.version == 1:
                _write(folders[0] / "memory.limit_in_bytes", memory)
                swap = folders[0] / "memory.memsw.limit_in_bytes"
                if swap.exists():  # only with swap accounting; then no swap for the run
                    _write(swap, memory)
                _write(folders[-1] / "pids.max", max_procs)
            else:
                _write(folders[0] / "memory.max", memory)
                _write(folders[0] / "memory.swap.max", 0)
                _write(folders[0] / "pids.max", max_procs)
        except OSError as exc:
            for folder in folders:
                with contextlib.suppress(OSError):
                    folder.rmdir()
            log.warning("cannot create a cgroup for the run (%s); per-process limits only", exc)
            return None
        return cls(layout, folders)

    def join_prefix(self) -> list[str]:
        """argv prefix that puts the command's first process into this cgroup."""
        procs = [str(folder / "cgroup.procs") for folder in self.folders]
        return ["/bin/sh", "-c", JOIN, "sandforge-join", *procs, "--"]

    def oom_killed(self) -> bool:
        """Whether the kernel killed a process of the run for the memory limit."""
        name = "memory.oom_control" if self.layout.version == 1 else "memory.events"
        with contextlib.suppress(OSError):
            for line in (self.folders[0] / name).read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill" and int(value) > 0:
                    return True
        return False

    def kill(self) -> None:
        """SIGKILL every process of the run until none is left (forks race the first pass;
        the pids limit bounds how many passes that takes)."""
        if self.layout.version == 2:
            with contextlib.suppress(OSError):
                _write(self.folders[0] / "cgroup.kill", 1)
        deadline = time.monotonic() + 30
        while (pids := self._pids()) and time.monotonic() < deadline:
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.002)
        if pids:
            log.warning("processes %s of a sandboxed run survived SIGKILL for 30 s", pids)

    def remove(self) -> None:
        for folder in self.folders:
            _rmdir_when_empty(folder)

    def _pids(self) -> list[int]:
        pids: set[int] = set()
        for folder in self.folders:
            with contextlib.suppress(OSError):
                pids.update(int(p) for p in (folder / "cgroup.procs").read_text().split())
        return sorted(pids)

    def __enter__(self) -> RunCgroup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()
        self.remove()


@functools.cache
def _layout() -> Layout | None:
    """Where this process may create run cgroups, or None (probed once per process)."""
    own = _own_cgroups()
    v1 = {name: ROOT / name for name in ("memory", "pids")}
    if all((path / "cgroup.procs").exists() for path in v1.values()):
        folders = {name: path / own.get(name, "/").lstrip("/") / GROUP for name, path in v1.items()}
        if all(_writable(folder) for folder in folders.values()):
            return Layout(1, folders["memory"], folders["pids"])
        return None
    controllers = ROOT / "cgroup.controllers"
    if controllers.exists() and {"memory", "pids"} <= set(controllers.read_text().split()):
        parent = ROOT / own.get("", "/").lstrip("/")
        folder = parent / GROUP
        if _writable(folder) and _enable_controllers(parent, folder):
            return Layout(2, folder, folder)
    return None


def _own_cgroups() -> dict[str, str]:
    """controller -> this process's cgroup path ("" for the v2 hierarchy)."""
    own: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            for name in controllers.split(","):
                own[name] = path
    return own


def _writable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(folder / "cgroup.procs", os.W_OK)


def _enable_controllers(parent: Path, folder: Path) -> bool:
    """v2: runs need memory and pids in `folder`'s subtree_control (and so in its parent's)."""
    try:
        for level in (parent, folder):
            enabled = set((level / "cgroup.subtree_control").read_text().split())
            if not {"memory", "pids"} <= enabled:
                _write(level / "cgroup.subtree_control", "+memory +pids")
    except OSError:
        return False  # e.g. our own cgroup holds processes: v2 forbids controllers below it
    return True


def _remove_stale(layout: Layout) -> None:
    """Remove run cgroups whose owning process died (a killed parent leaves them behind)."""
    for parent in {layout.memory, layout.pids}:
        with contextlib.suppress(OSError):
            for folder in parent.iterdir():
                tag = folder.name.removeprefix("run-").rpartition("-")[0]
                if folder.is_dir() and folder.name.startswith("run-") and not owner_alive(tag):
                    stale = RunCgroup(layout, (folder,))
                    stale.kill()
                    stale.remove()


def _rmdir_when_empty(folder: Path) -> None:
    for _ in range(100):  # a killed process leaves the cgroup a moment after SIGKILL
        try:
            folder.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.005)
    log.warning("cannot remove the run cgroup %s", folder)


def _write(path: Path, value: object) -> None:
    path.write_text(f"{value}\n")
