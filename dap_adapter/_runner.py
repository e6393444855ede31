"""The debuggee: runs a distdev application (or replays one journal) under debugpy.

Started by debugpy's launcher as ``python -m distdev.dap_adapter._runner dev APP ...`` or
``... replay JOURNAL ...``. Every service runs in this process and a call between services runs
on the caller's thread, so debugpy's Step Into follows a proxy call into the callee. This file
is excluded from "my code" by the launch rules, like the rest of distdev.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import threading
from pathlib import Path
from typing import Any


def set_nodelay() -> bool:
    """Turn Nagle off on pydevd's socket to the adapter.

    pydevd writes each message's header and body separately; with Nagle on, the second write
    waits for the peer's delayed ACK (about 40 ms) — on every response. Set
    ``DISTDEV_DAP_NODELAY=0`` to measure the difference.
    """
    if os.environ.get("DISTDEV_DAP_NODELAY", "1") == "0":
        return False
    try:
        import importlib

        # pydevd is debugpy's vendored engine, importable only under debugpy.
        py_db: Any = importlib.import_module("pydevd").get_global_debugger()
        sock = getattr(getattr(py_db, "writer", None), "sock", None)
        if sock is None:
            return False
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return True
    except Exception:  # not under debugpy, or its internals moved: run without the fix
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
    200 ms each). The event now stays set while commands are queued. Set
    ``DISTDEV_DAP_PIPELINE=0`` to measure the difference."""
    if os.environ.get("DISTDEV_DAP_PIPELINE", "1") == "0":
        return False
    try:
        import importlib

        py_db: Any = importlib.import_module("pydevd").get_global_debugger()
        if py_db is None:
            return False
        queues, events = py_db._cmd_queue, py_db._thread_events
        if not isinstance(events, dict):
            return False
        py_db._thread_events = _WakeUpEvents(queues, events)
        return True
    except Exception:  # not under debugpy, or its internals moved: run without the fix
        return False


def observe_evaluations() -> bool:
    """Run the debugger's evaluations (watches, hovers, the console, setting a variable) as an
    observer: an effect they trigger runs for real without touching a journal, and a call to
    another service is refused. A journal recorded under the debugger stays valid."""
    try:
        import importlib

        # pydevd reaches these through the module attribute, so wrapping it covers every caller.
        evaluation: Any = importlib.import_module("_pydevd_bundle.pydevd_vars")
    except ImportError:
        return False
    from distdev.tools import observing

    for name in ("evaluate_expression", "change_attr_expression"):
        original = getattr(evaluation, name, None)
        if original is None or getattr(original, "__distdev_observer__", False):
            continue

        def observed(*args: Any, __original: Any = original, **kwargs: Any) -> Any:
            with observing():
                return __original(*args, **kwargs)

        observed.__distdev_observer__ = True  # type: ignore[attr-defined]
        setattr(evaluation, name, observed)
    return True


_host: Any = None  # the DevHost of an application launch


def journal_positions() -> dict[str, Any] | None:
    """Where every service's journal stands in an application launch: ``{"service": the
    stopped thread's service, "seq": its last event, "positions": {id: last event}}``. The
    debug adapter evaluates this on a stopped thread (a build-time stop included: the services
    are then reached through the running service, before the host holds the application)."""
    from distdev import tools

    positions = tools.journal_positions(tools.running_app(_host))
    service = tools.current_service()
    here = service.id if service is not None and service.id in positions else next(
        iter(positions), None)
    if here is None:
        return None
    return {"service": here, "seq": positions[here], "positions": positions}


def _dev(args: argparse.Namespace) -> int:
    from distdev.tools import DevHost

    global _host
    host = _host = DevHost(Path(args.app), out=Path(args.out), state=Path(args.state), port=args.port,
                   report=lambda text: print(f"distdev: {text}", flush=True))

    def on_error(exc: BaseException) -> None:
        print(f"distdev: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)

    host.run(watch=False, on_error=on_error)
    return 0


def _replay(args: argparse.Namespace) -> int:
    import distdev

    from . import _replay_loop

    _replay_loop.start(distdev.read_journal(args.journal), args.source, args.stop_at)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="distdev.dap_adapter._runner")
    sub = parser.add_subparsers(dest="mode", required=True)
    dev = sub.add_parser("dev")
    dev.add_argument("app")
    dev.add_argument("--out", required=True)
    dev.add_argument("--state", required=True)
    dev.add_argument("--port", type=int)
    rep = sub.add_parser("replay")
    rep.add_argument("journal")
    rep.add_argument("--stop-at", type=int)
    rep.add_argument("--source")
    args = parser.parse_args(argv)
    # Run as __main__: the adapter's evaluations import this module by name (journal_positions).
    sys.modules.setdefault("distdev.dap_adapter._runner", sys.modules[__name__])
    set_nodelay()
    answer_pipelined_requests()
    observe_evaluations()
    return _dev(args) if args.mode == "dev" else _replay(args)


if __name__ == "__main__":
    sys.exit(main())
