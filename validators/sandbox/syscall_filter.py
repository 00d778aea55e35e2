"""The seccomp filter bubblewrap loads before the untrusted command (`bwrap --seccomp FD`).

Built with libseccomp (PyPI `pyseccomp`, ctypes bindings to Debian's libseccomp2), never
hand-assembled BPF. Default: allow; the syscalls below fail with EPERM. They are the ones a
sandboxed solver never needs and an escape or a kernel attack starts from: new namespaces,
mounts, tracing other processes, the kernel keyring, BPF, perf, modules, kexec, io_uring.
`clone` is refused only with a namespace flag (threads and fork stay), and `clone3`, whose
flags sit in memory a filter cannot read, answers ENOSYS so glibc falls back to `clone`.
Syscalls of another ABI (i386 `int 0x80`, x32) kill the process.
"""

from __future__ import annotations

import errno
import functools
import os

DENIED = (
    # namespaces and changing root
    "unshare",
    "setns",
    "pivot_root",
    "chroot",
    # mounts, old and new API
    "mount",
    "umount2",
    "open_tree",
    "move_mount",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "mount_setattr",
    # other processes' memory and descriptors
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "pidfd_getfd",
    "kcmp",
    # kernel keyring
    "keyctl",
    "add_key",
    "request_key",
    # kernel attack surface a solver never needs
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "open_by_handle_at",
    "name_to_handle_at",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "syslog",
    "acct",
    "quotactl",
    "swapon",
    "swapoff",
    "reboot",
    "iopl",
    "ioperm",
    "lookup_dcookie",
    "uselib",
    "_sysctl",
    "nfsservctl",
    "vhangup",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    "sethostname",
    "setdomainname",
    "fanotify_init",
)
NAMESPACE_FLAGS = (
    0x00020000  # CLONE_NEWNS
    | 0x02000000  # CLONE_NEWCGROUP
    | 0x04000000  # CLONE_NEWUTS
    | 0x08000000  # CLONE_NEWIPC
    | 0x10000000  # CLONE_NEWUSER
    | 0x20000000  # CLONE_NEWPID
    | 0x40000000  # CLONE_NEWNET
    | 0x00000080  # CLONE_NEWTIME
)


class FilterUnavailable(RuntimeError):
    """libseccomp or its bindings are missing: bubblewrap must not run without the filter."""


@functools.cache
def bpf_program() -> bytes:
    """The compiled filter (built once per process)."""
    try:
        import pyseccomp as seccomp
    except (ImportError, RuntimeError) as exc:  # RuntimeError: libseccomp.so.2 not found
        raise FilterUnavailable(
            f"the seccomp filter cannot be built ({exc}); install libseccomp2 "
            "(apt-get install libseccomp2) and the Python package pyseccomp"
        ) from None
    deny = seccomp.ERRNO(errno.EPERM)
    rules = seccomp.SyscallFilter(seccomp.ALLOW)
    rules.set_attr(seccomp.Attr.ACT_BADARCH, seccomp.KILL_PROCESS)
    for name in DENIED:
        rules.add_rule(deny, name)
    # arg 0 of clone is its flags on x86_64 and arm64 alike: refuse any namespace bit.
    for bit in _bits(NAMESPACE_FLAGS):
        rules.add_rule(deny, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, bit, bit))
    rules.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
    with os.fdopen(os.memfd_create("sandforge-seccomp", os.MFD_CLOEXEC), "w+b") as sink:
        rules.export_bpf(sink)
        sink.seek(0)
        return sink.read()


def program_fd() -> int:
    """A fresh descriptor (offset 0) holding the filter, for one bwrap to read; close it
    after the run. A memfd, so concurrent runs never share an offset."""
    program = bpf_program()
    fd = os.memfd_create("sandforge-seccomp", os.MFD_CLOEXEC)
    os.write(fd, program)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _bits(mask: int) -> list[int]:
    return [1 << i for i in range(mask.bit_length()) if mask >> i & 1]
