"""distdev's changes to pydevd (debugpy's engine, in the debuggee), in one place.

They reach into pydevd's internals, which are no public API, so they are applied only to the
debugpy versions they were written and tested for (``TESTED``, the range pyproject.toml
requires). Outside it the debuggee runs without them, and says so on the debug console: the
debugger still works, only slower, and evaluations are no longer kept out of the journals.

- ``set_nodelay``: TCP_NODELAY on pydevd's socket to the adapter; a step, 45 ms -> 2-5 ms.
- ``answer_pipelined_requests``: a stopped thread answers requests sent together at once,
  not one per 200 ms.
- ``observe_evaluations``: the debugger's evaluations run as an observer (no journal entries).
- ``observe_breakpoint_expressions``: so do breakpoint conditions, hit conditions and logpoints.

``DISTDEV_DAP_NODELAY=0`` and ``DISTDEV_DAP_PIPELINE=0`` turn the first two off, to measure
what they save (``benchmarks/bench_debugger.py`` does).
"""

from __future__ import annotations

import importlib
import os
import re
import socket
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["TESTED", "apply", "in_tested_range", "set_nodelay", "answer_pipelined_requests",
           "observe_evaluations", "observe_breakpoint_expressions"]

TESTED = ((1, 8, 22), (1, 9))
"""debugpy>=1.8.22,<1.9: as pyproject.toml requires (tests/dap/test_pydevd.py keeps them equal)."""


def in_tested_range(version: str) -> bool:
    """Whether debugpy ``version`` is one the patches were written for."""
    match = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", version)
    if match is None:
        return False
    found = tuple(int(part or 0) for part in match.groups())
    low, high = TESTED
    return low <= found < high


def apply(say: Callable[[str], None] = print) -> list[str]:
    """Apply every patch pydevd can take here; returns the names of those applied. Outside
    ``TESTED`` none is, and ``say`` is told why (its line shows on the debug console)."""
    try:
        version = str(importlib.import_module("debugpy").__version__)
    except (ImportError, AttributeError):
        return []  # not under debugpy: nothing to patch
    if not in_tested_range(version):
        low, high = (".".join(map(str, bound)) for bound in TESTED)
        say(f"distdev: debugpy {version} is not a version distdev's debugger was tested with "
            f"(>={low},<{high}): running without its changes to pydevd, so steps and "
            "requests sent together are slower, and an evaluation that triggers an effect may "
            f"be journaled. Install a tested debugpy: pip install 'debugpy>={low},<{high}'")
        return []
    patches = {"set_nodelay": set_nodelay, "answer_pipelined_requests": answer_pipelined_requests,
               "observe_evaluations": observe_evaluations,
               "observe_breakpoint_expressions": observe_breakpoint_expressions}
    return [name for name, patch in patches.items() if patch()]


def _debugger() -> Any:
    # pydevd is debugpy's vendored engine, importable only under debugpy.
    return importlib.import_module("pydevd").get_global_debugger()


def set_nodelay() -> bool:
    """Turn Nagle off on pydevd's socket to the adapter.

    pydevd writes each message's header and body separately; with Nagle on, the second write
    waits for the peer's delayed ACK (about 40 ms) — on every response.
    """
    if os.environ.get("DISTDEV_DAP_NODELAY", "1") == "0":
        return False
    try:
        sock = getattr(getattr(_debugger(), "writer", None), "sock", None)
        if sock is None:
            return False
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return True
    except Exception:  # its internals moved: run without the fix
        return False


class _PendingAwareEvent(threading.Event):
    """A suspended thread's wake-up event that stays set while commands wait in its queue."""

    def __init__(self, queue: Any) -> None:
        super().__init__()
        self._queue = queue

    def clear(self) -> None:
        if self._queue.empty():
            super().clear()


class _WakeUpEvents(dict[str, Any]):
    def __init__(self, queues: Any, existing: dict[str, Any]) -> None:
        super().__init__()
        self._queues = queues
        for thread_id in existing:
            self[thread_id]

    def __missing__(self, thread_id: str) -> _PendingAwareEvent:
        event = self[thread_id] = _PendingAwareEvent(self._queues[thread_id])
        event.set()  # whatever was posted before the swap is looked at
        return event


def answer_pipelined_requests() -> bool:
    """Let a stopped thread answer requests sent together without a pause between them.

    A suspended thread runs one queued command per wake-up, then clears its event and waits up
    to 200 ms: a request that arrived while another was being answered waited out that timeout
    (the relay's evaluate per frame, or an editor's scopes and variables sent together, took
    200 ms each). The event now stays set while commands are queued."""
    if os.environ.get("DISTDEV_DAP_PIPELINE", "1") == "0":
        return False
    try:
        py_db = _debugger()
        if py_db is None:
            return False
        queues, events = py_db._cmd_queue, py_db._thread_events
        if not isinstance(events, dict):
            return False
        py_db._thread_events = _WakeUpEvents(queues, events)
        return True
    except Exception:  # its internals moved: run without the fix
        return False


def observe_evaluations() -> bool:
    """Run the debugger's evaluations (watches, hovers, the console, setting a variable) as an
    observer: an effect they trigger runs for real without touching a journal, and a call to
    another service is refused. A journal recorded under the debugger stays valid."""
    try:
        # pydevd reaches these through the module attribute, so wrapping it covers every caller.
        evaluation: Any = importlib.import_module("_pydevd_bundle.pydevd_vars")
    except ImportError:
        return False
    return _observe(evaluation, ("evaluate_expression", "change_attr_expression"))


def observe_breakpoint_expressions() -> bool:
    """Evaluate breakpoint conditions, hit conditions and logpoint messages as an observer,
    exactly as the console is: a condition that reads the clock or calls another service
    must not leave a journal that no longer replays.

    pydevd evaluates them with a plain ``eval`` in two methods of its debugger (the hit
    condition inside the condition's), called through the instance by both its Python and its
    compiled tracer, so wrapping them on the class covers every breakpoint. What raises — a
    refused call to another service among them — is handled as debugpy handles any error there:
    a condition counts as false and its error, the refusal's message, is shown on the debug
    console; a hit condition counts as false; a logpoint logs the error's text instead of its
    message."""
    try:
        debugger: Any = importlib.import_module("pydevd").PyDB
    except (ImportError, AttributeError):
        return False
    return _observe(debugger, ("handle_breakpoint_condition", "handle_breakpoint_expression"))


def _observe(owner: Any, names: tuple[str, ...]) -> bool:
    """Wrap each of ``owner``'s functions ``names`` to run inside ``observing()``."""
    from distdev.tools import observing

    wrapped = False
    for name in names:
        original = getattr(owner, name, None)
        if original is None:
            continue
        wrapped = True
        if getattr(original, "__distdev_observer__", False):
            continue

        def observed(*args: Any, __original: Any = original, **kwargs: Any) -> Any:
            with observing():
                return __original(*args, **kwargs)

        observed.__distdev_observer__ = True  # type: ignore[attr-defined]
        setattr(owner, name, observed)
    return wrapped
