"""Keeping a service process out of the deployment's key material.

Every service process runs as the operator's user, so file modes cannot keep one from reading
the master secret or another service's key file. Landlock (Linux 5.13 and later) can: a thread
restricts itself, and the kernel holds it, and every thread or process it starts afterwards, to
that, even as root. A confined process also cannot ptrace or read the memory of a process
outside its restriction (the supervisor, the other services), nor mount anything.

Landlock only grants, so ``confine`` grants reading everything but the protected paths: it
walks down to each protected path, granting every entry of each folder on the way except the one
that leads on. Two consequences: a file created afterwards directly in one of those folders
cannot be read by the confined process (it can still be written), and a file cannot be linked
or renamed out of them into another folder (cross-folder links are how a confined process could
otherwise give a protected file a second name).
"""

from __future__ import annotations

import ctypes
import functools
import os
import stat
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

__all__ = ["confine", "entries_beside", "landlock_abi"]

# <linux/landlock.h>; the system call numbers are the same on every architecture.
_CREATE_RULESET, _ADD_RULE, _RESTRICT_SELF = 444, 445, 446
_CREATE_RULESET_VERSION = 1 << 0
_RULE_PATH_BENEATH = 1
_ACCESS_FS_READ_FILE = 1 << 2
_ACCESS_FS_REFER = 1 << 13  # ABI 2 and later
_PR_SET_NO_NEW_PRIVS = 38


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64)]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _syscall(number: int, *args: object) -> int:
    result = int(_libc().syscall(ctypes.c_long(number), *args))
    if result < 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))
    return result


def landlock_abi() -> int | None:
    """The Landlock ABI version of this kernel, or None where there is none."""
    if sys.platform != "linux":
        return None
    try:
        return _syscall(_CREATE_RULESET, None, ctypes.c_size_t(0),
                        ctypes.c_uint32(_CREATE_RULESET_VERSION))
    except OSError:  # ENOSYS: no Landlock; EOPNOTSUPP: turned off at boot
        return None


def entries_beside(protected: Iterable[Path]) -> Iterator[Path]:
    """Every entry of every folder on the way to a protected path, except the entries that are
    on the way or protected. Symbolic links are left out: what they lead to is granted, or not,
    where it is."""
    targets = {Path(os.path.realpath(p)) for p in protected}
    on_the_way = {folder for target in targets for folder in target.parents}
    for folder in sorted(on_the_way):
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            path = Path(entry.path)
            if path not in on_the_way and path not in targets and not entry.is_symlink():
                yield path


def confine(protected: Iterable[Path], log: Callable[[str], None]) -> bool:
    """Forbid this thread, and all it starts from now on, to read ``protected`` (files or
    folders; those that do not exist are left out). False, and a warning in ``log``, where the
    kernel cannot."""
    protected = [p for p in protected if os.path.lexists(p)]
    if not protected:  # a ruleset without a rule would forbid reading anything at all
        return False
    abi = landlock_abi()
    try:
        if abi is None:
            raise OSError("this kernel has no Landlock")
        _restrict(protected, _ACCESS_FS_READ_FILE | (_ACCESS_FS_REFER if abi >= 2 else 0))
    except OSError as exc:
        log(f"warning: this service is not confined ({exc.strerror or exc}): code it runs can "
            f"read the deployment's key material ({', '.join(map(str, protected))})")
        return False
    log(f"confined (Landlock ABI {abi}): this process cannot read the deployment's key material")
    return True


def _restrict(protected: list[Path], handled: int) -> None:
    attr = _RulesetAttr(handled)
    ruleset = _syscall(_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr)),
                       ctypes.c_uint32(0))
    try:
        for path in entries_beside(protected):
            _grant(ruleset, path, handled)
        if _libc().prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:  # required to restrict oneself
            raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
        _syscall(_RESTRICT_SELF, ctypes.c_int(ruleset), ctypes.c_uint32(0))
    finally:
        os.close(ruleset)


def _grant(ruleset: int, path: Path, access: int) -> None:
    try:
        fd = os.open(path, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return  # gone since it was listed: nothing to grant
    try:
        if not stat.S_ISDIR(os.fstat(fd).st_mode):
            access &= _ACCESS_FS_READ_FILE  # a file takes only the rights of files
        attr = _PathBeneathAttr(access, fd)
        _syscall(_ADD_RULE, ctypes.c_int(ruleset), ctypes.c_int(_RULE_PATH_BENEATH),
                 ctypes.byref(attr), ctypes.c_uint32(0))
    except OSError:
        pass  # a file system Landlock cannot tie rules to: what is beneath stays unreadable
    finally:
        os.close(fd)
