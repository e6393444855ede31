"""The debuggee: runs a distdev application (or replays one journal) under debugpy.

Started by debugpy's launcher as ``python -m distdev.dap_adapter._runner dev APP ...`` or
``... replay JOURNAL ...``. Every service runs in this process and a call between services runs
on the caller's thread, so debugpy's Step Into follows a proxy call into the callee. First it
applies distdev's changes to pydevd (``_pydevd``), and it answers the relay's questions
(``_evaluate``): here, where each service's journal stands; a replay answers its own
(``_replay_loop``). This file is excluded from "my code" by the launch rules, like the rest of
distdev.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from . import _pydevd
from ._evaluate import JOURNAL_POSITIONS, JournalPositions

if TYPE_CHECKING:
    from distdev.tools import DevHost


def journal_positions(host: DevHost | None) -> JournalPositions | None:
    """Where every service's journal stands in an application launch, and the stopped thread's
    service. Asked on a stopped thread — a build-time stop included: the services are then
    reached through the running service, before ``host`` holds the application."""
    from distdev import tools

    positions = tools.journal_positions(tools.running_app(host))
    service = tools.current_service()
    here = service.id if service is not None and service.id in positions else next(
        iter(positions), None)
    if here is None:
        return None
    return JournalPositions(service=here, seq=positions[here], positions=positions)


@contextlib.contextmanager
def untraced() -> Iterator[None]:
    """This thread unseen by the debugger meanwhile: a reload replays a service's history to
    restore it, and the user's breakpoints are for the code that serves, not for that."""
    import debugpy

    debugpy.trace_this_thread(False)
    try:
        yield
    finally:
        debugpy.trace_this_thread(True)


def _dev(args: argparse.Namespace) -> int:
    from distdev.tools import DevHost

    host = DevHost(Path(args.app), out=Path(args.out), state=Path(args.state), port=args.port,
                   report=lambda text: print(f"distdev: {text}", flush=True),
                   unwatched=untraced)
    JOURNAL_POSITIONS.answered_by(lambda: journal_positions(host))

    def on_error(exc: BaseException) -> None:
        print(f"distdev: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)

    host.run(watch=args.watch, on_error=on_error)
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
    dev.add_argument("--watch", action="store_true")
    rep = sub.add_parser("replay")
    rep.add_argument("journal")
    rep.add_argument("--stop-at", type=int)
    rep.add_argument("--source")
    args = parser.parse_args(argv)
    _pydevd.apply(lambda line: print(line, flush=True))
    return _dev(args) if args.mode == "dev" else _replay(args)


if __name__ == "__main__":
    sys.exit(main())
