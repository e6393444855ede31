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
import tempfile
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
    from distdev._context import observing

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


_final_position: dict[str, Any] | None = None


def journal_position() -> dict[str, Any] | None:
    """Where the replay is: ``{"service": id, "seq": n}``, n the last journal event replayed.
    The debug adapter evaluates this on a stopped thread: during the replay the thread's
    service has its replay tape; after it, the position where the replay stopped."""
    from distdev import _context

    service = _context.state.service
    tape = getattr(service, "tape", None)
    events, pos = getattr(tape, "events", None), getattr(tape, "pos", None)
    if service is not None and isinstance(events, list) and isinstance(pos, int) and pos >= 1:
        return {"service": service.id, "seq": int(events[pos - 1].seq)}
    return _final_position


def _dev(args: argparse.Namespace) -> int:
    from distdev._dev import DevHost

    host = DevHost(Path(args.app), out=Path(args.out), state=Path(args.state), port=args.port,
                   report=lambda text: print(f"distdev: {text}", flush=True))

    def on_error(exc: BaseException) -> None:
        print(f"distdev: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)

    host.run(watch=False, on_error=on_error)
    return 0


def _replay(args: argparse.Namespace) -> int:
    import distdev

    contents = distdev.read_journal(args.journal)
    restored = distdev.replay(contents, until=args.until, source=args.source)
    global _final_position
    last = contents.events[restored.events] if restored.events < len(contents.events) else None
    _final_position = {"service": restored.id,
                       "seq": int(last.seq) if last is not None else restored.events}
    where = f"before event {args.stop_at}" if args.stop_at is not None else "at its end"
    print(f"distdev: {restored.id} replayed {restored.events} events; stopped {where}",
          flush=True)
    if args.stop_at is not None:
        pending = next((e for e in contents.events if e.seq == args.stop_at), None)
        _stop_in_service(restored.id, restored.namespace, args.stop_at, pending)
    return 0


def _stop_in_service(service: str, namespace: dict[str, Any], seq: int, pending: Any) -> None:
    """Stop the debugger in a frame whose globals are the restored service's, so its state is
    there to inspect (Globals) and to evaluate against. The frame's code is a small real file
    that says where the replay stopped: debugpy shows it as the current location."""
    try:
        import debugpy
    except ImportError:
        return
    folder = Path(tempfile.gettempdir()) / "distdev-dap" / service.replace("/", "__")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"before_event_{seq}.py"
    text = (
        f"# distdev replay: {service} is restored up to event {seq - 1}; the replay stopped\n"
        f"# before event {seq}: {pending!r}\n"
        "# Its variables are this frame's Globals; expressions evaluate against them.\n"
        "_stop()\n"
        "pass  # stopped here: continue to end the replay\n"
    )
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)
    # debugpy stops at the next line of the frame that called breakpoint().
    exec(compile(text, str(path), "exec"), namespace, {"_stop": debugpy.breakpoint})


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
    rep.add_argument("--until", type=int)
    rep.add_argument("--stop-at", type=int)
    rep.add_argument("--source")
    args = parser.parse_args(argv)
    # Run as __main__: make the adapter's evaluations (journal_position) find this module.
    sys.modules.setdefault("distdev.dap_adapter._runner", sys.modules[__name__])
    set_nodelay()
    observe_evaluations()
    return _dev(args) if args.mode == "dev" else _replay(args)


if __name__ == "__main__":
    sys.exit(main())
