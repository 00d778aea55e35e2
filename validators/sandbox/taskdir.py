"""The task folder a run writes in: a size-limited copy of its inputs, read back safely.

The caller's `workdir` is never handed to untrusted code. Its files are copied into a fresh
folder beside it (so paths relative to workdir, like ../private, resolve the same) that is,
as root, a tmpfs of `disk_mb` and INODES files mounted on the host (`mode=0700`, nosuid,
nodev): filling it fails with ENOSPC and never touches the host's disk. The sandbox sees
that folder at `workdir`'s own path. Without the right to mount (not root) the folder is a
plain temporary directory and only RLIMIT_FSIZE bounds what is written: a documented
fallback, with a warning.

After the run, when none of its processes is left, only the outputs the caller named are
read back: each opened with O_NOFOLLOW | O_NONBLOCK relative to the folder, checked with
fstat on the opened descriptor (a regular file, one link, at most `cap` bytes), so a planted
symlink, FIFO, device, directory or hard link is refused, never followed or blocked on.
Then the folder is unmounted and removed.

A parent killed mid-run leaves its tmpfs mounted; the next TaskFolder in any process
unmounts those whose owner is dead (the owner's pid and start time are in the folder name).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import logging
import os
import shutil
import stat
import tempfile
from pathlib import Path

from sandforge.validators.sandbox.core import SandboxConfigError, owner_alive, owner_tag

log = logging.getLogger(__name__)

PREFIX = ".sandforge-task-"  # a hidden sibling of the workdir
FS_NAME = "sandforge-task"  # the tmpfs' source in /proc/self/mountinfo
INODES = 65_536  # files and folders a run may make in its task folder
_MS_NOSUID, _MS_NODEV, _MNT_DETACH = 2, 4, 2
_OPEN_OUTPUT = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


class TaskFolder:
    """Context manager: `path` is the folder to mount at `workdir` inside the sandbox."""

    def __init__(self, workdir: Path, disk_mb: int, owner: int | None) -> None:
        self.workdir = workdir
        self.disk_mb = disk_mb
        self.owner = owner  # uid that runs the command (None: ours)
        self.path = Path()
        self.mounted = False

    def __enter__(self) -> TaskFolder:
        _unmount_stale()
        self.path = Path(
            tempfile.mkdtemp(prefix=f"{PREFIX}{owner_tag()}-", dir=self.workdir.parent)
        )
        try:
            self.mounted = _mount_tmpfs(self.path, self.disk_mb)
            try:
                shutil.copytree(self.workdir, self.path, symlinks=True, dirs_exist_ok=True)
            except shutil.Error as exc:
                raise SandboxConfigError(
                    f"cannot copy {self.workdir} into the task folder (limit {self.disk_mb} "
                    f"MB): {exc}"
                ) from None
            if self.owner is not None:
                _chown_tree(self.path, self.owner)
            self.path.chmod(0o700)
        except BaseException:
            self._discard()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._discard()

    def read_outputs(self, names: tuple[str, ...], cap: int) -> tuple[dict[str, bytes], dict]:
        """(outputs, refused): each named file's bytes, or why it was not read. A missing
        file is neither. Call only once every process of the run is gone."""
        outputs: dict[str, bytes] = {}
        refused: dict[str, str] = {}
        folder = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            for name in names:
                try:
                    outputs[name] = _read_regular(name, folder, cap)
                except FileNotFoundError:
                    continue
                except _Refused as why:
                    refused[name] = str(why)
        finally:
            os.close(folder)
        return outputs, refused

    def _discard(self) -> None:
        if self.mounted:
            _umount(self.path)
            self.mounted = False
        shutil.rmtree(self.path, ignore_errors=True)


class _Refused(Exception):
    pass


def check_output_names(names: tuple[str, ...]) -> None:
    """Outputs are plain file names in the task folder: no folders, no way out of it."""
    for name in names:
        if not name or name in (".", "..") or "/" in name or "\0" in name:
            raise ValueError(f"output {name!r}: expected a plain file name in the task folder")


def _read_regular(name: str, folder: int, cap: int) -> bytes:
    try:
        fd = os.open(name, _OPEN_OUTPUT, dir_fd=folder)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _Refused("a symbolic link, not a regular file") from None
        if exc.errno == errno.ENOENT:
            raise FileNotFoundError(name) from None
        raise _Refused(f"cannot be opened: {os.strerror(exc.errno or 0)}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _Refused(f"not a regular file ({_kind(info.st_mode)})")
        if info.st_nlink != 1:
            raise _Refused(f"a hard link ({info.st_nlink} names), not a file of the run's own")
        if info.st_size > cap:
            raise _Refused(f"{info.st_size} bytes, more than the {cap} allowed")
        with os.fdopen(os.dup(fd), "rb") as stream:
            data = stream.read(cap + 1)
        if len(data) > cap:
            raise _Refused(f"more than the {cap} bytes allowed")
        return data
    finally:
        os.close(fd)


def _kind(mode: int) -> str:
    for test, kind in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    ):
        if test(mode):
            return kind
    return "not a regular file"


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _mount_tmpfs(path: Path, size_mb: int) -> bool:
    """Mount a tmpfs of size_mb on path; False (plain folder) where we may not mount."""
    if os.geteuid() != 0:
        _warn_unbounded("not root")
        return False
    # Inodes are bounded too: a million empty files would fill no byte of `size`.
    options = f"size={size_mb}m,nr_inodes={INODES},mode=0700".encode()
    flags = _MS_NOSUID | _MS_NODEV
    if _libc().mount(FS_NAME.encode(), bytes(path), b"tmpfs", flags, options) != 0:
        _warn_unbounded(f"mount failed: {os.strerror(ctypes.get_errno())}")
        return False
    return True


def _umount(path: Path) -> None:
    if _libc().umount2(bytes(path), _MNT_DETACH) != 0:
        log.warning("cannot unmount the task folder %s: %s", path, os.strerror(ctypes.get_errno()))


@functools.cache
def _warn_unbounded(reason: str) -> None:
    log.warning(
        "task folders are plain directories (%s): only RLIMIT_FSIZE bounds what a run writes",
        reason,
    )


def _unmount_stale() -> None:
    """Unmount and remove task folders left mounted by a parent that died."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            fields = line.split()
            separator = fields.index("-")
            if fields[separator + 2] != FS_NAME:
                continue
            mount_point = Path(fields[4].replace("\\040", " "))
            tag = mount_point.name.removeprefix(PREFIX).rpartition("-")[0]
            if mount_point.name.startswith(PREFIX) and not owner_alive(tag):
                _umount(mount_point)
                shutil.rmtree(mount_point, ignore_errors=True)


def _chown_tree(root: Path, uid: int) -> None:
    """lchown root and everything under it to uid (our own copies: nothing to follow)."""
    os.chown(root, uid, uid, follow_symlinks=False)
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            os.chown(os.path.join(folder, name), uid, uid, follow_symlinks=False)
