"""Shared pieces of the benchmark suite: result rows, timing, temp apps, plain-Python loading.

Timing rule: every figure is the median of several repetitions (the machines are shared and
noisy), taken with ``time.perf_counter`` after a ``gc.collect()``; the garbage collector stays
enabled because a real program pays for it too. Nothing here asserts a timing.
"""

from __future__ import annotations

import dataclasses
import gc
import importlib.util
import itertools
import statistics
import sys
import textwrap
import time
import types
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@dataclasses.dataclass(frozen=True)
class Settings:
    """Sizes and repetition counts for one run (``full`` or ``quick``)."""

    quick: bool
    membrane_calls: int
    membrane_reps: int
    journal_events: int
    journal_reps: int
    replay_events: int
    replay_reps: int
    temporal_events: int
    build_calls: int
    build_reps: int


FULL = Settings(
    quick=False, membrane_calls=20_000, membrane_reps=7, journal_events=200_000, journal_reps=5,
    replay_events=100_000, replay_reps=5, temporal_events=10_000, build_calls=5_000, build_reps=5,
)
QUICK = Settings(
    quick=True, membrane_calls=3_000, membrane_reps=3, journal_events=30_000, journal_reps=3,
    replay_events=20_000, replay_reps=3, temporal_events=2_000, build_calls=1_000, build_reps=3,
)


@dataclasses.dataclass(frozen=True)
class Row:
    """One measurement: distdev's figure beside a baseline measured in the same run."""

    key: str
    title: str
    unit: str
    distdev: float | None  # None: not measured (``distdev_text`` says why)
    baseline_name: str
    baseline: float | None
    higher_is_better: bool
    goal: str = "-"
    met: bool | None = None
    note: str = ""
    distdev_text: str = ""  # shown instead of a missing figure ("not implemented")
    baseline_text: str = ""

    @property
    def ratio(self) -> float | None:
        """distdev's figure divided by the baseline's (same unit); None if one is missing."""
        if self.distdev is None or self.baseline is None:
            return None
        return self.distdev / self.baseline if self.baseline else float("inf")

    def ratio_text(self) -> str:
        """The ratio read the right way round: ``812x slower`` or ``55x faster``."""
        r = self.ratio
        if r is None:
            return "-"
        better = r >= 1 if self.higher_is_better else r <= 1
        factor = r if r >= 1 else (1 / r if r else float("inf"))
        return f"{_fmt(factor)}x {'faster' if better else 'slower'}"

    def as_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["distdev_over_baseline"] = self.ratio
        data["ratio_text"] = self.ratio_text()
        return data


def _fmt(x: float) -> str:
    if x >= 100:
        return f"{x:,.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def fmt_value(value: float | None, unit: str, missing: str = "-") -> str:
    """A figure with its unit, rounded for a table (``missing`` when there is none)."""
    if value is None:
        return missing
    if unit == "events/s":
        return f"{value:,.0f} ev/s"
    if unit == "us/call":
        return f"{value:.3f} us" if value < 1 else f"{value:.1f} us"
    if unit == "s":
        return f"{value * 1e3:.1f} ms" if value < 1 else f"{value:.2f} s"
    return f"{value:.4g} {unit}"


def median_seconds(run: Callable[[], Any], reps: int, *, setup: Callable[[], Any] | None = None,
                   warmup: bool = True) -> float:
    """Median wall time of ``run()`` over ``reps`` repetitions (``setup()`` runs untimed)."""
    if warmup:
        if setup is not None:
            setup()
        run()
    times = []
    for _ in range(reps):
        if setup is not None:
            setup()
        gc.collect()
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def write_app(folder: Path, files: Mapping[str, str]) -> Path:
    """Write an application's files (dedented) into ``folder``; return the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(textwrap.dedent(text).lstrip())
    return folder


def progress(message: str) -> None:
    """A progress line on stderr (stdout is kept for the results)."""
    print(f"  .. {message}", file=sys.stderr, flush=True)


# -- the same application code without distdev -------------------------------------------

_plain_ids = itertools.count()


@contextmanager
def plain_distdev(root: Path) -> Iterator[None]:
    """While active, ``from distdev import import_service`` gives a plain-Python stand-in that
    loads the service file as an ordinary module (its top level runs once, like an import)."""

    def import_service(path: str, *, name: str | None = None) -> types.ModuleType:
        return load_plain_module(root / path)

    stub = types.ModuleType("distdev")
    stub.import_service = import_service  # type: ignore[attr-defined]
    real = sys.modules.get("distdev")
    sys.modules["distdev"] = stub
    try:
        yield
    finally:
        if real is not None:
            sys.modules["distdev"] = real
        else:
            del sys.modules["distdev"]


def load_plain_module(path: Path) -> types.ModuleType:
    """Execute ``path`` as a fresh ordinary module (not registered in ``sys.modules``)."""
    spec = importlib.util.spec_from_file_location(f"_bench_plain_{next(_plain_ids)}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_plain_app(entry: Path) -> types.ModuleType:
    """Run an application's root file with plain imports in place of ``import_service``."""
    with plain_distdev(entry.parent):
        return load_plain_module(entry)
