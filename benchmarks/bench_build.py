"""Measurement 4: building with journaling against running the same code without distdev.

A small app whose root's top level does real work across services: it calls a child service
(``store.py``) ``CALLS`` times, folding values into the child's state, and reads the clock and
``random`` every tenth iteration. distdev: ``App(...).build()`` into a fresh output folder
(running the top level under membranes and journals, then writing journals, bundles and the
manifest). Baseline: the same two files run as plain Python, ``import_service`` replaced by an
ordinary module import (``bench_util.run_plain_app``, bytecode cached after the warm-up, as a
normal run would have it). The ratio is the build's overhead; the issue sets no target for it.
"""

from __future__ import annotations

import itertools
from pathlib import Path

from bench_util import Row, Settings, median_seconds, progress, run_plain_app, write_app

import distdev


def app_files(calls: int) -> dict[str, str]:
    return {
        "app.py": f'''
            import random
            import time

            from distdev import import_service

            store = import_service("./store.py")

            started = time.time()
            samples: list[float] = []
            total = 0
            for i in range({calls}):
                total += store.put(f"user-{{i % 64}}", i)
                if i % 10 == 0:
                    samples.append(random.random() + time.time() - started)


            def summary() -> int:
                return total
        ''',
        "store.py": '''
            balances: dict[str, int] = {}
            history: list[int] = []


            def put(key: str, amount: int) -> int:
                balances[key] = balances.get(key, 0) + amount
                history.append(amount % 97)
                return balances[key] % 1000
        ''',
    }


def measure(tmp: Path, settings: Settings) -> list[Row]:
    calls, reps = settings.build_calls, settings.build_reps
    folder = write_app(tmp / "build-app", app_files(calls))
    entry = folder / "app.py"
    builds = itertools.count()

    def build() -> None:
        i = next(builds)
        app = distdev.App(entry, out=tmp / f"build-out-{i}", state=tmp / f"build-state-{i}")
        app.build()
        app.close()

    progress(f"build: App.build() vs plain Python, {reps} reps x {calls:,} cross-service calls")
    plain = median_seconds(lambda: run_plain_app(entry), reps)
    built = median_seconds(build, reps)
    return [
        Row(key="build.overhead", title="build (App.build())", unit="s",
            distdev=built, baseline_name="same code, plain Python", baseline=plain,
            higher_is_better=False, goal="no target", met=None,
            note=f"root top level: {calls:,} calls to a child + clock/random reads; "
                 f"{reps} reps, median; build includes writing journals, bundles, manifest; "
                 "plain run is an ordinary import (bytecode cached after the warm-up)"),
    ]
