"""Process-wide backstops for the determinism rules.

``_interpose`` covers the functions the classification table names. An audit hook catches
what reaches the world any other way while service code runs (and not inside an effect): every
audit event that performs IO — a file opened or changed, a socket, a process, native code — is
refused with a reason that names what was done. ``logging.Logger.handle`` records log output as
the service's output. Both are installed with the interposition, when the first service is
created, never at import.
"""

from __future__ import annotations

import logging
import os
import sys
import weakref
from typing import Any

from ._context import state
from ._interpose import acting_service, install_interposition

__all__ = ["install_guards"]

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
_PROCESS = ("subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn",
            "os.fork", "os.forkpty", "os.kill", "os.killpg", "pty.spawn")
_CHANGES = ("os.remove", "os.rename", "os.mkdir", "os.rmdir", "os.chmod", "os.chown",
            "os.link", "os.symlink", "os.truncate", "os.utime", "os.chflags", "os.lchflags",
            "os.setxattr", "os.removexattr", "os.chdir", "shutil.copyfile", "shutil.copymode",
            "shutil.copystat", "shutil.copytree", "shutil.rmtree", "shutil.move",
            "shutil.chown", "shutil.make_archive", "shutil.unpack_archive", "tempfile.mkstemp",
            "tempfile.mkdtemp", "os.putenv", "os.unsetenv")
_TO_A_DESTINATION = frozenset({"shutil.copyfile", "shutil.copytree", "shutil.move", "os.rename",
                               "os.link", "os.symlink"})
_DIRECT_READS = ("os.listdir", "os.scandir", "os.getxattr", "os.listxattr", "mmap.__new__")
_NETWORK = ("socket.", "http.client.", "ftplib.", "smtplib.", "poplib.", "imaplib.",
            "nntplib.", "telnetlib.", "urllib.Request", "webbrowser.open")
_WIDE = ("sys.setprofile", "sys.settrace", "sys.addaudithook", "_thread.start_new_thread",
         "signal.pthread_kill")
_installed = False


def install_guards() -> None:
    """Install the interposition and the hooks, once per process (an audit hook cannot be
    removed)."""
    global _installed
    if _installed:
        return
    _installed = True
    install_interposition()
    sys.addaudithook(_audit)
    logging.Logger.handle = _handle  # type: ignore[method-assign]
    logging.Logger.addHandler = _add_handler  # type: ignore[assignment]


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if state.service is None or state.effect_depth:
        return  # the common case, decided before anything else is looked at
    what = _refusal(event, args)
    if what is None:
        return
    service = acting_service(sys._getframe(1))
    if service is not None:
        service.refuse(what)


def _refusal(event: str, args: tuple[Any, ...]) -> str | None:
    """What an IO audit event does, in a refusal's words; None for one that performs no IO."""
    if event == "open":
        path, mode, flags = args
        if isinstance(mode, str) and any(c in mode for c in "wax+") or (
                not isinstance(mode, str) and (flags or 0) & _WRITE_FLAGS):
            return f"writing the file {path}"
        return (f"reading the file {path} directly (io.FileIO, os.open); open() reads it "
                "journaled")
    if event.startswith(_PROCESS):
        return f"starting or controlling a process ({event})"
    if event.startswith(_CHANGES):
        if event in _TO_A_DESTINATION and len(args) > 1:
            return f"writing the file {args[1]} ({event})"
        return f"changing the file {args[0] if args else ''} ({event})"
    if event.startswith(_DIRECT_READS):
        return f"reading the file system directly ({event})"
    if event.startswith(_NETWORK):
        return f"network IO ({event})"
    if event.startswith("ctypes."):
        return f"calling native code through ctypes ({event})"
    if event == "sqlite3.connect" and args and args[0] not in (":memory:", b":memory:", ""):
        return f"opening the database file {args[0]} (sqlite3)"
    if event.startswith(_WIDE):
        return f"changing a setting of the whole process ({event})"
    return None


_real_handle = logging.Logger.handle
_real_add_handler = logging.Logger.addHandler
_owners: weakref.WeakKeyDictionary[logging.Handler, str] = weakref.WeakKeyDictionary()
"""Handler -> the service whose code added it: its records only reach that service's."""


def _add_handler(self: logging.Logger, handler: logging.Handler) -> None:
    service = acting_service(sys._getframe(1))
    if service is not None:
        _owners[handler] = service.id
    _real_add_handler(self, handler)


def _handle(self: logging.Logger, record: logging.LogRecord) -> None:
    """A record logged by service code is the service's output (journaled), and goes to the
    handlers that are its own or the host's; in a replay, to its own only (a replay is quiet
    on the host's terminal and logs, but a handler the code set up is the code's state)."""
    service = state.service
    if service is None or state.effect_depth or acting_service(sys._getframe(1)) is None:
        _real_handle(self, record)
        return
    service.output("log", f"{record.levelname}:{record.name}:{record.getMessage()}")
    if self.disabled or not self.filter(record):
        return
    replaying = service.phase == "replay"
    logger: logging.Logger | None = self
    found = 0
    while logger is not None:
        for handler in logger.handlers:
            owner = _owners.get(handler)
            if owner == service.id or owner is None and not replaying:
                found += 1
                if record.levelno >= handler.level:
                    handler.handle(record)
        logger = logger.parent if logger.propagate else None
    last = logging.lastResort
    if not found and not replaying and last is not None and record.levelno >= last.level:
        last.handle(record)
