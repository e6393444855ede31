"""Which service is running on this thread, and whether its effects are being recorded.

Calls between services in one process run on the caller's thread (the debugger's Step Into
depends on it), so "the current service" is a per-thread stack. ``effect_depth`` is above zero
while a real effect runs (a user ``@effect`` body, or the real clock behind a virtual one): what
runs inside an effect is not journaled again and may use threads, sockets and files.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from typing import Any, Protocol, TypeVar

T = TypeVar("T")

__all__ = ["Files", "ServiceSide", "state", "enter_from_outside", "current_service", "guarded",
           "running", "in_effect", "observing", "next_callout_id"]


class Files(Protocol):
    """A service's view of files (``_files.FileView``)."""

    def locate(self, path: Any) -> tuple[str, str | None]: ...

    def real_path(self, path: Any) -> str: ...

    def installed(self, name: str) -> bool: ...

    def open(self, file: Any, mode: str, buffering: int, encoding: str | None,
             errors: str | None, newline: str | None) -> Any: ...


class ServiceSide(Protocol):
    """What the compartment needs of the service it isolates (the service layer, above, is
    the one that implements it)."""

    @property
    def files(self) -> Files:
        """How its code sees files."""
        ...

    @property
    def interposed(self) -> dict[str, Any]:
        """State of its own behind the interposed functions (its random generator, its
        environ)."""
        ...

    @property
    def coverage(self) -> int:
        """The journal format whose coverage applies: 1 covers the service's own code only."""
        ...

    @property
    def id(self) -> str: ...

    @property
    def phase(self) -> str: ...

    def effect(self, kind: str, args: list[Any], real: Callable[[], T]) -> T:
        """Perform ``real`` as effect ``kind``: journaled, replayed, or just run."""
        ...

    def refuse(self, what: str) -> None:
        """Raise ``DeterminismError`` if service code (outside an effect) runs here."""
        ...

    def output(self, stream: str, text: str) -> bool:
        """Record printed or logged text; True if it should also be shown now."""
        ...

    def loaded_source(self, path: str, sha256: str, source: bytes) -> None:
        """An application file was loaded after the build (its code joins the journal)."""
        ...

    def service_files(self) -> Collection[str]:
        """The application files (relative, posix) known to be services' modules: its own,
        its children's, and in a process holding the whole application, every service's."""
        ...


class _ThreadState(threading.local):
    def __init__(self) -> None:
        self.service: ServiceSide | None = None
        self.chain: str | None = None
        self.effect_depth = 0
        self.observing = 0
        self.call_key: str | None = None
        self.callouts = 0
        self.answers_after = False
        """This thread sends the answer of each call it serves once the call has returned (a
        service's socket server): what the call's end finds due waits for that answer
        (``Service.after_reply``)."""
        self.host_streams: tuple[Any, Any] = (sys.stdout, sys.stderr)
        """sys.stdout and sys.stderr as they were when service code was entered from outside:
        the host's (a terminal, a log, pytest's capture), not ones the code set up itself."""


def enter_from_outside() -> None:
    """Note the host's streams as service code is entered from code that is no service's."""
    state.host_streams = (sys.stdout, sys.stderr)


state = _ThreadState()


def current_service() -> ServiceSide | None:
    """The service whose code is running on this thread, or None outside every service."""
    return state.service


def guarded() -> bool:
    """Whether service code is running here under the determinism rules (not in an effect)."""
    return state.service is not None and state.effect_depth == 0


@contextmanager
def running(service: ServiceSide | None, chain: str | None) -> Iterator[None]:
    """Run a block as ``service`` on call chain ``chain``."""
    saved = (state.service, state.chain, state.effect_depth)
    if state.service is None:
        enter_from_outside()
    state.service, state.chain, state.effect_depth = service, chain, 0
    try:
        yield
    finally:
        state.service, state.chain, state.effect_depth = saved


@contextmanager
def in_effect() -> Iterator[None]:
    """Run a block as the real side of an effect: not journaled, not restricted."""
    state.effect_depth += 1
    try:
        yield
    finally:
        state.effect_depth -= 1


@contextmanager
def observing() -> Iterator[None]:
    """Run a block as an observer (a debugger's watch, hover or console): effects run for real
    and are neither journaled nor served from a journal, and calls to other services are
    refused. Observing is not acting: a journal recorded under a debugger stays valid."""
    state.effect_depth += 1
    state.observing += 1
    try:
        yield
    finally:
        state.observing -= 1
        state.effect_depth -= 1


def next_callout_id(journal_seq: int | None) -> int | str | None:
    """The id of the call out about to be made: the k-th call out of the incoming call being
    handled, when that call has an id — the same after a crash, whatever else arrived first —
    else the call-out's seq in this service's journal."""
    if state.call_key is None:
        return journal_seq
    n = state.callouts
    state.callouts = n + 1
    return f"{state.call_key}/{n}"
