"""Measurement 3: replaying a 100k-event journal, beside Temporal's Replayer in the same run.

The journal is recorded by a real app: ``counter.py``, taken live with ``distdev.App``, whose
export ``step(i)`` folds ``i + 1`` into a dict counter (the same state work as Temporal's
baseline workflow) and reads the clock once (``time.time()``, an effect). It is called from the
outside until the journal holds the target count: each call records call-in, effect and return.

``distdev.replay(journal_path)`` is then timed in-process: reading and validating the journal,
materializing its bundle, re-running the top level and re-delivering every call, with every
effect served from and checked against the journal. events/s = ``len(read_journal(path).events)``
/ seconds. A diagnostic row times ``replay`` of the already-read ``JournalContents``.

Baseline: ``temporal_replay_events_per_second()`` from ``temporal_baseline.py`` (Temporal's
``Replayer`` on a synthesised history of a comparable activity loop; see its docstring). It is
run once per runner; it replays a smaller history than distdev's (Temporal slows superlinearly
with size, so the smaller size favours Temporal).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench_util import Row, Settings, median_seconds, progress, write_app

import distdev

GOAL_RATIO = 20.0

APP_FILES = {
    "counter.py": '''
        import time

        counts: dict[str, int] = {}
        last_seen = 0.0


        def step(i: int) -> int:
            global last_seen
            key = f"k{i % 8}"
            counts[key] = counts.get(key, 0) + i + 1
            last_seen = time.time()
            return counts[key]
    ''',
}
EVENTS_PER_CALL = 3  # call-in, effect, return


@contextmanager
def cache_home(folder: Path) -> Iterator[None]:
    """Point replay's bundle cache (``$XDG_CACHE_HOME/distdev``) into the temp folder."""
    saved = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(folder)
    try:
        yield
    finally:
        if saved is None:
            del os.environ["XDG_CACHE_HOME"]
        else:
            os.environ["XDG_CACHE_HOME"] = saved


def record_journal(tmp: Path, target_events: int) -> tuple[Path, dict[str, int]]:
    """Run the counter app live until its journal holds about ``target_events`` events."""
    folder = write_app(tmp / "replay-app", APP_FILES)
    app = distdev.App(folder / "counter.py", out=tmp / "replay-out", state=tmp / "replay-state")
    app.build()
    app.go_live()
    try:
        already = len(distdev.read_journal(app.journal("counter")).events)  # header + build
        calls = max(1, (target_events - already) // EVENTS_PER_CALL)
        counter = app.service("counter")
        for i in range(calls):
            counter.step(i)
        journal = app.journal("counter")
        live_counts = dict(app.services["counter"].module.counts)
    finally:
        app.close()
    return journal, live_counts


def _check(replayed: distdev.ReplayedService, n_events: int, live: dict[str, int]) -> None:
    if replayed.events != n_events - 1 or replayed.namespace["counts"] != live:
        raise RuntimeError("replay did not restore the recorded state; the figures are void")


def _temporal(size: int) -> dict[str, Any]:
    from temporal_baseline import temporal_replay_events_per_second

    progress(f"replay: Temporal Replayer baseline, ~{size:,} events (sandboxed + unsandboxed)")
    return temporal_replay_events_per_second(size)


def measure(tmp: Path, settings: Settings) -> list[Row]:
    progress(f"replay: recording a ~{settings.replay_events:,}-event journal")
    journal, live = record_journal(tmp, settings.replay_events)
    contents = distdev.read_journal(journal)
    n = len(contents.events)
    reps = settings.replay_reps
    progress(f"replay: distdev.replay, {reps} reps x {n:,} events")
    with cache_home(tmp / "cache"):
        _check(distdev.replay(journal), n, live)
        rate = n / median_seconds(lambda: distdev.replay(journal), reps)
        preread = n / median_seconds(lambda: distdev.replay(contents), reps)
    t = _temporal(settings.temporal_events)
    sizes = f"distdev {n:,} events ({reps} reps, median) vs Temporal {t['events']:,} events " \
            f"(1 run, temporalio {t['temporalio']})"

    def row(key: str, title: str, value: float, base_name: str, base: float, note: str,
            goal: bool = True) -> Row:
        return Row(key=key, title=title, unit="events/s", distdev=value, baseline_name=base_name,
                   baseline=base, higher_is_better=True,
                   goal=f">= {GOAL_RATIO:g}x Temporal" if goal else "-",
                   met=(value / base >= GOAL_RATIO) if goal else None, note=note)

    return [
        row("replay.temporal_sandboxed", "replay (distdev.replay(path))", rate,
            "Temporal Replayer, sandboxed", t["events_per_s"], sizes),
        row("replay.temporal_unsandboxed", "replay (distdev.replay(path))", rate,
            "Temporal Replayer, unsandboxed", t["unsandboxed_events_per_s"],
            "unsandboxed is Temporal's lower bound on SDK overhead (the stricter comparison)"),
        row("replay.preread", "  diag: replay(contents), no read", preread,
            "Temporal Replayer, sandboxed", t["events_per_s"],
            "distdev.replay(JournalContents): excludes reading/validating the file",
            goal=False),
    ]
