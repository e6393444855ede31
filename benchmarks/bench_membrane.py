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
writes (tapes detached: the general path without its records), and with a callee that reads
the clock once (an interposed function, journaled as an effect: what interposition costs a call
that uses it; a call that touches no interposed function raises no audit event and runs no
guard).

Where the time goes. The common call takes the fast path (``service/_fast.py``), and its
repeated work is in C where the package was built with a compiler (``docs/architecture.md``, "In
C"): the four records (``journal/_framing.c``, ~0.2 us each, CRC included), the two encodings
(``membrane/_cbor.c``, ~0.1 us together), the export's call (``membrane/_calls.c``) and both
gates (``service/_callgate.c``, ~0.1 us for the callee's enter and exit and the caller's suspend
and resume). Counted by ``valgrind --tool=callgrind`` (instructions a call: the same loop run
3,000 times, minus the same program run 0 times; repeatable, unlike a shared machine's clock),
a service-to-service call went from 67,100 instructions to 27,100 with this, a call with a
dict, a list and a keyword from 98,700 to ~38,000, and a call from the outside from 120,000 to
55,100. What is left is mostly the interpreter running distdev's Python between those steps:

* the proxy's export lookup (``ServiceProxy.__getattribute__``), the bound ``send`` and its
  checks that the fast path applies, ``call`` and ``_handle``: five frames of a call's nine;
* the thread's context: four thread-local reads and two writes (~0.3 us);
* the callee's ``decimal`` context (``getcontext``, two ``setcontext``: a context variable's
  each) and its frame, ~0.3 us;
* the call's accounting after it (``Service._after_call``: state digests falling due, ~0.3 us a
  call spread over every ~40 calls, and a checkpoint at idle under an engine).

A dict, a list and a keyword add ~1.5 us: plain data (exact scalars in lists and dicts with
scalar keys) is copied and encoded in one walk, in C (``membrane.plain_call_copy``), and that
copy is both what the journals hold and the callee's arguments. Outside to service takes the
same way (``App.bind``: plain arguments go straight to the callee's ``handle_call``); the rule
that the journals reach the OS after every call from the outside (``docs/journal-format.md``)
is the largest part of what it adds: on one machine 1.9 us of a 5.2 us call (the flush switched
off in alternate runs of the same process), of which the ``pwrite`` of the callee's records
was 0.4 us and the rest the flush's locks and bookkeeping over every journal; on another, whose
disk took ~4.5 us a ``pwrite``, the call took 9.5 us. Since then a journal with nothing
buffered returns from its flush before it takes a lock, and the app flushes a tuple of its live
journals with no lock of its own: 5.9 us a call became 5.4-5.8 us in alternate runs on a third
machine (2.0 us of flush became 1.6-1.8, the ``pwrite`` 0.6 of it). The outside's own steps (a new chain, the
call-in's head encoded for it, the thread's context set and put back) are most of the rest.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import statistics
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


def _digests_on_off(app: distdev.App, run: Any, n: int, reps: int) -> tuple[float, float]:
    """Per-call times of ``run`` with state digests as scheduled and with none falling due,
    in alternate repetitions (one without digests measured minutes after one with them
    compares two states of a shared machine, not digests)."""
    schedules = [service._digests for service in app.services.values()]  # internal
    spacing = [schedule.every for schedule in schedules]
    run()
    on, off = [], []
    for _ in range(reps):
        for schedule, every in zip(schedules, spacing):
            schedule.every = every
        on.append(median_seconds(run, 1, warmup=False))
        spacing = [schedule.every for schedule in schedules]
        for schedule in schedules:
            schedule.every = 1 << 62  # no digest falls due
        off.append(median_seconds(run, 1, warmup=False))
    return statistics.median(on) / n * 1e6, statistics.median(off) / n * 1e6


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
        digested, undigested = _digests_on_off(app, lambda: root.loop(n), n, reps)
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
             s2s_base, f"state digests cost {digested - undigested:+.2f} us/call here (runs "
             "with and without them alternated; spaced to ~5% of a 5 us call; bench_digest "
             "gives one digest's cost by state size)"),
        _row("membrane.interposed_clock", "  diag: callee reads time.time() once", clock,
             clock_base, f"one interposed call journaled as an effect: {clock - s2s:+.2f} "
             "us/call over worker.add; a call touching nothing interposed pays nothing"),
        _row("membrane.no_journal", "  diag: service->service, no journal",
             detached, s2s_base, "same loop with Service.tape = Detached(): no journal "
             "writes and no digests, on the general path (the fast path takes recording "
             "services only): compare with the general path's row"),
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
