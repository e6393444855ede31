"""Measurement 1: a membrane call with small arguments against a direct Python call.

A two-service app (``app.py`` imports ``worker.py`` with ``import_service``) is built and taken
live with ``distdev.App``; every membrane call then journals four events (call-out and result in
the caller's journal, call-in and return in the callee's). Two figures:

* service to service: ``app.service("app").loop(n)`` runs ``worker.add(i, 2)`` n times inside the
  root service; the time of that one outside call divided by n (nothing subtracted);
* outside to service: ``app.service("app/worker").add(1, 2)`` per call, in a Python loop.

The baseline runs the very same files as plain Python (``import_service`` replaced by an ordinary
module import), in the same loops. A diagnostic row repeats the service-to-service loop with the
services' tapes detached (no journal writes), to show what journaling costs.

Where the time goes (``run.py --profile``, 2-core machine, this revision): about half of a
service-to-service call is its four journal records — each a ``cbor2.dumps`` (which also asks
``isinstance(list, Mapping)`` for every list), framing with a CRC and a buffered write; the
"no journal" row is the other half: the callee's ``handle_call`` (thread context saved and
restored, the actor gate, the service's own ``decimal`` context entered and left), the proxy's
attribute lookup (an export check), marshalling arguments and result (``args_to_wire`` /
``from_wire``) and the router. Interposition costs nothing here (no world is touched) and state
digests are spaced to about 5% of a call (``bench_digest``). The hot path to flatten next is the
record encoding: one preallocated encoder for the four records instead of four ``dumps``.
"""

from __future__ import annotations

import cProfile
import io
import pstats
from pathlib import Path
from typing import Any

from bench_util import Row, Settings, median_seconds, progress, run_plain_app, write_app

import distdev
from distdev.service import Detached

GOAL_US = 5.0

APP_FILES = {
    "app.py": '''
        from distdev import import_service

        worker = import_service("./worker.py")


        def loop(n: int) -> int:
            total = 0
            for i in range(n):
                total += worker.add(i, 2)
            return total
    ''',
    "worker.py": '''
        def add(a: int, b: int) -> int:
            return a + b
    ''',
}


def _outside_loop(worker: Any, n: int) -> None:
    for _ in range(n):
        worker.add(1, 2)


def _per_call_us(run: Any, n: int, reps: int) -> float:
    return median_seconds(run, reps) / n * 1e6


def _row(key: str, title: str, us: float, base_us: float, note: str,
         goal: bool = True) -> Row:
    return Row(
        key=key, title=title, unit="us/call", distdev=us, baseline_name="direct Python call",
        baseline=base_us, higher_is_better=False,
        goal=f"<= {GOAL_US:g} us" if goal else "-", met=(us <= GOAL_US) if goal else None,
        note=note,
    )


def measure(tmp: Path, settings: Settings) -> list[Row]:
    folder = write_app(tmp / "membrane", APP_FILES)
    n, reps = settings.membrane_calls, settings.membrane_reps
    plain = run_plain_app(folder / "app.py")
    app = distdev.App(folder / "app.py", out=tmp / "membrane-out", state=tmp / "membrane-state")
    app.build()
    app.go_live()
    try:
        root, worker = app.service("app"), app.service("app/worker")
        progress(f"membrane: service->service, {reps} x {n:,} calls")
        s2s = _per_call_us(lambda: root.loop(n), n, reps)
        s2s_base = _per_call_us(lambda: plain.loop(n), n, reps)
        progress(f"membrane: outside->service, {reps} x {n:,} calls")
        out = _per_call_us(lambda: _outside_loop(worker, n), n, reps)
        out_base = _per_call_us(lambda: _outside_loop(plain.worker, n), n, reps)
        progress("membrane: service->service with journaling off (diagnostic)")
        for service in app.services.values():
            service.tape = Detached()  # internal: the same path, minus the journal writes
        detached = _per_call_us(lambda: root.loop(n), n, reps)
    finally:
        app.close()
    size = f"{reps} reps x {n:,} calls, median"
    return [
        _row("membrane.service_to_service", "membrane call, service->service", s2s,
             s2s_base, f"root.loop(n) calls worker.add(i, 2) n times; {size}; 4 events/call"),
        _row("membrane.outside_to_service", "membrane call, outside->service", out,
             out_base, f"proxy('app/worker').add(1, 2) in a loop; {size}; 2 events/call "
             "+ journal flush per call"),
        _row("membrane.no_journal", "  diag: service->service, no journal",
             detached, s2s_base, "same loop with Service.tape = Detached(): membrane and "
             "marshalling only, no journal writes", goal=False),
    ]


def profile(tmp: Path, calls: int = 20_000, top: int = 25) -> str:
    """cProfile of the service-to-service loop, sorted by internal time (for ``--profile``)."""
    folder = write_app(tmp / "membrane-profile", APP_FILES)
    app = distdev.App(folder / "app.py", out=tmp / "profile-out", state=tmp / "profile-state")
    app.build()
    app.go_live()
    root = app.service("app")
    root.loop(100)
    profiler = cProfile.Profile()
    try:
        profiler.runcall(root.loop, calls)
    finally:
        app.close()
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text)
    stats.sort_stats("tottime").print_stats(top)
    return f"cProfile of root.loop({calls:,}) (each call = 1 membrane call):\n{text.getvalue()}"
