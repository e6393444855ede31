"""The session: what the relay's two components share, under one lock.

As in debugpy's own adapter (``debugpy/adapter/sessions.py``), every message handler runs
holding the session's lock (``_components.message_handler``), so one handler runs at a time and
the state below needs no lock of its own. A handler that waits for debugpy's answer releases the
lock while it waits (``wait_for``): the other component's handlers run meanwhile, and the answer
is taken on debugpy's reader thread (``_server``), which needs the lock only for a moment.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from ._breakpoints import BreakpointBook
from ._config import runtime_dirs
from ._engine import ReplaySources, RuntimeFiles, Stack, module_label, service_files
from ._time_travel import Timeline
from ._wire import Json

__all__ = ["Session"]


class Session:
    """One debug session's state: what was launched, the stops, the breakpoints."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._changed = threading.Condition(self.lock)
        self.ended = threading.Event()
        """Set when either side has gone: the client's stream, or debugpy's adapter."""
        self.runtime = RuntimeFiles(tuple(runtime_dirs()))
        self.mode: str | None = None
        """``dev`` (an application) or ``replay`` (a journal), once launched."""
        self.app: Path | None = None
        """The root service of an application launch: function breakpoints name its exports."""
        self._services: dict[str, Path] | None = None
        self.sources: ReplaySources | None = None
        """A replay run from the journal's bundle: where its files run from."""
        self.breakpoints = BreakpointBook()
        self.timeline = Timeline()
        self.stacks: dict[int, Stack] = {}
        """Thread id -> its user stack at this stop; valid until the program runs again."""
        self.raw_frames: dict[int, Json] = {}
        """Frame id -> the frame as debugpy described it, at this stop."""
        self.positions_due = False
        """An application stopped: announce the journal positions with the next stack."""
        self.terminated_sent = False
        self.uncaught_via_user_unhandled = False
        """The client asked for "uncaught" only: debugpy was also given "userUnhandled", and only
        its stops where an exception leaves the last service's code are shown."""
        self.stops = 0
        """How many stopped events debugpy has sent: a pause that changes nothing is told."""

    def services(self) -> dict[str, Path]:
        """Service id -> file of the launched application (read once; none in a replay)."""
        if self._services is None:
            self._services = service_files(self.app) if self.app is not None else {}
        return self._services

    def module_label(self, module: Json) -> Json | None:
        """A DAP ``Module`` as the client is shown it (``_engine.module_label``), or None."""
        label = module_label(str(module.get("name", "")), module.get("path"), self.runtime,
                             self.services())
        return None if label is None else dict(module, name=label)

    def __enter__(self) -> Session:
        self.lock.acquire()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.lock.release()

    def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Wait, the lock released meanwhile, until ``predicate`` holds (after a ``changed``);
        False if ``timeout`` seconds passed first. The caller holds the lock."""
        with self._changed:
            return self._changed.wait_for(predicate, timeout)

    def changed(self) -> None:
        """Wake whoever waits in ``wait_for``. The caller holds the lock."""
        self._changed.notify_all()

    def resumed(self) -> None:
        """The program ran: every frame id of the last stop is stale."""
        self.stacks.clear()
        self.raw_frames.clear()
