"""Process-wide backstops for the determinism rules.

The virtual modules (``_virtual``) catch what service code does itself. Shared libraries that a
service calls use the real standard library, so two hooks catch the rest while service code runs
on a thread (and not inside an effect): an audit hook refuses sockets, subprocesses and file
writes, and ``logging.Logger.handle`` records log output as the service's output.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from ._context import state

_WATCHED = frozenset({
    "open", "socket.__new__", "subprocess.Popen", "os.system", "os.exec", "os.posix_spawn",
    "os.spawn", "os.fork", "os.forkpty", "_thread.start_new_thread",
})
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
_installed = False


def install_guards() -> None:
    """Install the hooks once per process (an audit hook cannot be removed)."""
    global _installed
    if _installed:
        return
    _installed = True
    sys.addaudithook(_audit)
    logging.Logger.handle = _handle  # type: ignore[method-assign]


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event not in _WATCHED:
        return
    service = state.service
    if service is None or state.effect_depth:
        return
    if event == "open":
        _, mode, flags = args
        writes = any(c in mode for c in "wax+") if isinstance(mode, str) else bool(
            (flags or 0) & _WRITE_FLAGS
        )
        if not writes:
            return
        service.refuse(f"writing the file {args[0]}")
    elif event == "socket.__new__":
        service.refuse("opening a socket (network IO)")
    elif event == "_thread.start_new_thread":
        service.refuse("starting a thread")
    else:
        service.refuse(f"starting a process ({event})")


_real_handle = logging.Logger.handle


def _handle(self: logging.Logger, record: logging.LogRecord) -> None:
    service = state.service
    if service is None or state.effect_depth:
        _real_handle(self, record)
        return
    text = f"{record.levelname}:{record.name}:{record.getMessage()}"
    if service.output("log", text):
        _real_handle(self, record)
