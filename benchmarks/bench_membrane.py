"""Measurement 1: a membrane call with small arguments against a direct Python call.

A two-service app (``app.py`` imports ``worker.py`` with ``import_service``) is built and taken
live with ``distdev.App``; every membrane call then journals four events (call-out and result in
the caller's journal, call-in and return in the callee's). The figures:

* service to service: ``app.service("app").loop(n)`` runs ``worker.add(i, 2)`` n times inside the
  root service; the time of that one outside call divided by n (nothing subtracted);
* the same with a dict, a list and a keyword (``worker.mix({"a": i}, [i, 2], scale=3)``);
* outside to service: ``app.service("app/worker").add(1, 2)`` per call, in a Python loop (two
  events, and the journals flushed to the OS after every call from the outside).

The baseline runs the very same files as plain Python (``import_service`` replaced by an ordinary
module import), in the same loops. Diagnostic rows (no goal) repeat the service-to-service loop
changed in one way each, to say what each part costs per call: the general path (the in-process
fast path switched off, ``service._fast.ENABLED``), without state digests, without journal
writes (tapes detached), and with a callee that reads the clock once (an interposed function,
journaled as an effect: what interposition costs a call that uses it; a call that touches no
interposed function raises no audit event and runs no guard).

Where the time goes (``run.py --profile``, 2-core machine, this revision): the common call takes
the fast path (``service/_fast.py``): its arguments and result are encoded once for both journals
and its constant strings come from cached encodings, so about a third of a call is its four
journal records (a CRC, a packed head and a ``bytearray`` append each, ~0.6-1 us), then the two
encodings, the callee's ``decimal`` context, the gate and the thread context. State digests are
spaced to about 5% of a 5 us call (``bench_digest``). Below this needs C: one record builder for
the four records.
"""

from __future__ import annotations

import cProfile
import io
import pstats
from pathlib import Path
from typing import Any

from bench_util import Row, Settings, median_seconds, progress, run_plain_app, write_app

import distdev
from distdev.service import Detached, _fast

GOAL_US = {"membrane.service_to_service": 4.0, "membrane.containers": 10.0,
           "membrane.outside_to_service": 6.0}
"""Issue 18's goals (on a quiet 2-vCPU machine)."""

APP_FILES = {
    "app.py": '''
        from distdev import import_service

        worker = import_service("./worker.py")


        def loop(n: int) -> int:
            total = 0
            for i in range(n):
                total += worker.add(i, 2)
            return total


        def loop_mixed(n: int) -> int:
            total = 0
            for i in range(n):
                total += worker.mix({"a": i}, [i, 2], scale=3)
            return total


        def loop_clock(n: int) -> float:
            total = 0.0
            for i in range(n):
                total += worker.stamp(i)
            return total
    ''',
    "worker.py": '''
        import time


        def add(a: int, b: int) -> int:
            return a + b


        def mix(counts: dict, items: list, scale: int = 1) -> int:
            return (counts["a"] + len(items)) * scale


        def stamp(i: int) -> float:
            return time.time() + i
    ''',
}


def _outside_loop(worker: Any, n: int) -> None:
    for _ in range(n):
        worker.add(1, 2)


def _per_call_us(run: Any, n: int, reps: int) -> float:
    return median_seconds(run, reps) / n * 1e6


def _row(key: str, title: str, us: float, base_us: float, note: str) -> Row:
    goal = GOAL_US.get(key)
    return Row(
        key=key, title=title, unit="us/call", distdev=us, baseline_name="direct Python call",
        baseline=base_us, higher_is_better=False,
        goal=f"<= {goal:g} us" if goal is not None else "-",
        met=(us <= goal) if goal is not None else None, note=note,
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
        mixed = _per_call_us(lambda: root.loop_mixed(n), n, reps)
        mixed_base = _per_call_us(lambda: plain.loop_mixed(n), n, reps)
        progress(f"membrane: outside->service, {reps} x {n:,} calls")
        out = _per_call_us(lambda: _outside_loop(worker, n), n, reps)
        out_base = _per_call_us(lambda: _outside_loop(plain.worker, n), n, reps)
        progress("membrane: diagnostics (general path, no digests, clock, no journal)")
        clock = _per_call_us(lambda: root.loop_clock(n), n, reps)
        clock_base = _per_call_us(lambda: plain.loop_clock(n), n, reps)
        _fast.ENABLED = False  # internal: every call down the general path
        try:
            general = _per_call_us(lambda: root.loop(n), n, reps)
        finally:
            _fast.ENABLED = True
        for service in app.services.values():
            service._digests.every = 1 << 62  # internal: no digest falls due
        undigested = _per_call_us(lambda: root.loop(n), n, reps)
        for service in app.services.values():
            service.tape = Detached()  # internal: the same path, minus the journal writes
        detached = _per_call_us(lambda: root.loop(n), n, reps)
    finally:
        app.close()
    size = f"{reps} reps x {n:,} calls, median"
    return [
        _row("membrane.service_to_service", "membrane call, service->service", s2s,
             s2s_base, f"root.loop(n) calls worker.add(i, 2) n times; {size}; 4 events/call"),
        _row("membrane.containers", "membrane call, dict + list + keyword", mixed, mixed_base,
             f"worker.mix(a dict, a list, scale=3) in the root's loop; {size}"),
        _row("membrane.outside_to_service", "membrane call, outside->service", out,
             out_base, f"proxy('app/worker').add(1, 2) in a loop; {size}; 2 events/call "
             "+ journal flush per call"),
        _row("membrane.general_path", "  diag: service->service, general path", general,
             s2s_base, f"fast path off (service._fast.ENABLED): {general - s2s:+.2f} us/call "
             "against the fast path"),
        _row("membrane.no_digests", "  diag: service->service, no state digests", undigested,
             s2s_base, f"state digests cost {s2s - undigested:+.2f} us/call here (spaced to "
             "~5% of a call; bench_digest gives one digest's cost by state size)"),
        _row("membrane.interposed_clock", "  diag: callee reads time.time() once", clock,
             clock_base, f"one interposed call journaled as an effect: {clock - s2s:+.2f} "
             "us/call over worker.add; a call touching nothing interposed pays nothing"),
        _row("membrane.no_journal", "  diag: service->service, no journal",
             detached, s2s_base, "same loop with Service.tape = Detached(): membrane and "
             "marshalling only, no journal writes (and no digests)"),
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
