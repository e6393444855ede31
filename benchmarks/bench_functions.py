"""Measurement 11: a function (``host.function``) under 16 concurrent clients, with
``max_instances=4`` beside ``max_instances=1`` in the same run; and what being a function costs
a call.

tests/apps/functions (a root, the ``quotes`` function, a ledger) is copied twice into the
scratch folder, once as it is (``host.function(max_instances=4)``) and once with
``max_instances=1``; each is built with ``distdev build`` and brought up with ``distdev up
--detach`` (durable), side by side. 16 client threads of this process, each with its own
authenticated connection to the function's address, call it as fast as answers come, for two
kinds of call:

- ``slow_price``: a call that waits 5 ms on something slower than itself (a journaled
  ``time.sleep`` stands for a database or an API): what functions are for;
- ``digest``: a few ms of CPU (2,000 chained SHA-256), bound by the machine's cores (2 here),
  so four instances cannot do better than the cores allow.

Before each timed run the clients warm up until the pool has started its instances (it starts
them as calls queue: the first seconds of a burst are served by fewer). Throughput is calls
answered per second; every figure is the median of the repetitions.

Two costs per call, each beside what it is added to, one client, in the same run:

- the pool's hop: a call to the function's address (the pool hands it to an instance) beside
  the same call to that instance's own address (a deployment with ``--no-sync``: an fdatasync
  per call would hide it);
- the frozen-globals check: a call to ``quotes.price`` in one process (``load_app``) beside the
  same module hosted with ``host.process()``, where no check runs.

Goal: 16 clients get more throughput from four instances than from one (the acceptance line of
functions). Nothing is asserted. ``python benchmarks/bench_functions.py [--quick]`` runs it alone.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from bench_util import Row, Settings, progress  # noqa: E402

APP = HERE.parent / "tests" / "apps" / "functions"
FUNCTION = "app/quotes"
CLIENTS = 16
INSTANCES = (1, 4)
WORK = {"slow_price": ["pen", 3, 0.005], "digest": [2_000]}


@dataclasses.dataclass(frozen=True)
class Sizes:
    seconds: float
    reps: int
    single_calls: int


QUICK_SIZES = Sizes(seconds=2.0, reps=2, single_calls=300)
FULL_SIZES = Sizes(seconds=5.0, reps=3, single_calls=2_000)


def _run(*args: str) -> str:
    result = subprocess.run([sys.executable, "-P", "-m", "distdev", *args], capture_output=True,
                            text=True, timeout=300)
    if result.returncode != 0:
        raise RuntimeError(f"distdev {' '.join(args)} failed: {result.stderr}")
    return result.stdout


def _copy(tmp: Path, instances: int, hosting: str | None = None) -> Path:
    """The application with ``max_instances=instances`` (or ``quotes`` hosted ``hosting``)."""
    source = tmp / (hosting or f"max{instances}")
    shutil.copytree(APP, source)
    quotes = source / "quotes.py"
    declaration = hosting or f"host.function(max_instances={instances})"
    quotes.write_text(quotes.read_text().replace("host.function(max_instances=4)",
                                                 declaration))
    return source


def _up(tmp: Path, instances: int, *options: str) -> Path:
    source = _copy(tmp / "-".join(("up", *options)), instances)
    out, state = source / "out", source / "state"
    _run("build", str(source / "app.py"), "-o", str(out))
    _run("up", str(out), "--state", str(state), "--detach", *options)
    return state


def _connection(state: Path, address: str | None = None) -> Any:
    from distdev.engines import Connection
    from distdev.engines.local import Deployment

    deployment = Deployment.load(state)
    return Connection(address or deployment.services[FUNCTION].address, deployment.secret(),
                      "bench", 120)


def _instances(state: Path) -> list[dict[str, Any]]:
    report = json.loads((state / FUNCTION / "instances.json").read_text())
    return [row for row in report["instances"] if row["state"] == "ready"]


def _load(state: Path, export: str, seconds: float, instances: int) -> float:
    """Calls per second of 16 clients, once the pool runs ``instances`` instances."""
    stop, timing = threading.Event(), threading.Event()
    counts = [0] * CLIENTS
    errors: list[BaseException] = []

    def client(i: int) -> None:
        connection = _connection(state)
        try:
            k = 0
            while not stop.is_set():
                k += 1
                connection.call("bench", f"bench-{i}-{k}", None, export, WORK[export], {})
                if timing.is_set():
                    counts[i] += 1
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 120
    while len(_instances(state)) < instances and time.monotonic() < deadline and not errors:
        time.sleep(0.1)  # a benchmark's warm-up: the pool starts instances as calls queue
    time.sleep(0.5)
    timing.set()
    started = time.perf_counter()
    time.sleep(seconds)
    timing.clear()
    elapsed = time.perf_counter() - started
    stop.set()
    for thread in threads:
        thread.join(120)
    if errors:
        raise RuntimeError(f"a client failed: {errors[0]!r}")
    return sum(counts) / elapsed


def _per_call(connection: Any, calls: int, export: str = "price",
              args: list[Any] | None = None) -> float:
    started = time.perf_counter()
    for k in range(calls):
        connection.call("bench", f"single-{k}", None, export, args or ["book", 2], {})
    return (time.perf_counter() - started) / calls


def _hop(state: Path, sizes: Sizes) -> tuple[float, float]:
    """Seconds per call through the pool's address, and to the instance's own."""
    instance = _instances(state)[0]["address"]
    through, direct = [], []
    for _ in range(sizes.reps):
        for address, into in ((None, through), (instance, direct)):
            connection = _connection(state, address)
            try:
                _per_call(connection, 50)
                into.append(_per_call(connection, sizes.single_calls))
            finally:
                connection.close()
    return statistics.median(through), statistics.median(direct)


def _check_cost(tmp: Path, sizes: Sizes) -> tuple[float, float]:
    """Seconds per in-process call to ``price``: as a function, and hosted as a process."""
    from distdev.testing import load_app

    figures = []
    for hosting in ("host.function(max_instances=4)", "host.process()"):
        source = _copy(tmp / "check", 4, hosting)
        app = load_app(source / "app.py", out=source / "out", state=source / "state")
        try:
            quotes = app.service(FUNCTION)
            for _ in range(200):  # warm: the first call after the build freezes the globals
                quotes.price("book", 2)
            times = []
            for _ in range(sizes.reps):
                started = time.perf_counter()
                for _ in range(sizes.single_calls):
                    quotes.price("book", 2)
                times.append((time.perf_counter() - started) / sizes.single_calls)
            figures.append(statistics.median(times))
        finally:
            app.close()
    return figures[0], figures[1]


def run_all(tmp: Path, sizes: Sizes) -> dict[str, Any]:
    results: dict[str, Any] = {"throughput": {}}
    states: dict[Any, Path] = {}
    try:
        for n in INSTANCES:
            states[n] = _up(tmp, n)
        states["hop"] = _up(tmp, 1, "--no-sync")
        for export in WORK:
            for n in INSTANCES:
                runs = []
                for rep in range(sizes.reps):
                    progress(f"functions: {export}, max_instances={n}, rep {rep + 1}")
                    runs.append(_load(states[n], export, sizes.seconds, n))
                results["throughput"][(export, n)] = statistics.median(runs)
        progress("functions: the pool's hop")
        results["hop"] = _hop(states["hop"], sizes)
    finally:
        for state in states.values():
            with contextlib.suppress(RuntimeError):
                _run("down", "--state", str(state))
    progress("functions: the frozen-globals check")
    results["check"] = _check_cost(tmp, sizes)
    return results


def measure(tmp: Path, settings: Settings) -> list[Row]:
    sizes = QUICK_SIZES if settings.quick else FULL_SIZES
    tmp.mkdir(parents=True, exist_ok=True)
    return _rows(run_all(tmp, sizes), sizes)


def _rows(results: dict[str, Any], sizes: Sizes) -> list[Row]:
    how = (f"tests/apps/functions under distdev up (durable), {CLIENTS} clients with a "
           f"connection each; {sizes.reps} reps of {sizes.seconds:g} s, median")
    rows = []
    for export, what in (("slow_price", "a call waiting 5 ms"), ("digest", "CPU-bound")):
        four, one = (results["throughput"][(export, n)] for n in (4, 1))
        rows.append(Row(
            key=f"functions.throughput.{export}", unit="calls/s",
            title=f"function, {CLIENTS} clients, {what}: max_instances=4",
            distdev=four, baseline_name="max_instances=1", baseline=one,
            higher_is_better=True, goal="> max_instances=1", met=four > one, note=how))
    through, direct = results["hop"]
    rows.append(Row(
        key="functions.pool_hop", title="function call through its pool, one client",
        unit="us/call", distdev=through * 1e6, baseline_name="to the instance directly",
        baseline=direct * 1e6, higher_is_better=False,
        note="quotes.price over the local engine's Unix socket, --no-sync (no fdatasync to "
             "hide the hop)"))
    checked, unchecked = results["check"]
    rows.append(Row(
        key="functions.frozen_check", title="in-process call to a function (globals checked)",
        unit="us/call", distdev=checked * 1e6, baseline_name="hosted as a process",
        baseline=unchecked * 1e6, higher_is_better=False,
        note="quotes.price under load_app: one dict of rates hashed, other globals by identity"))
    return rows


def main(argv: list[str]) -> int:
    import tempfile

    sizes = QUICK_SIZES if "--quick" in argv else FULL_SIZES
    with tempfile.TemporaryDirectory(prefix="distdev-bench-functions-") as tmp:
        results = run_all(Path(tmp), sizes)
    for row in _rows(results, sizes):
        print(f"{row.title}: {row.distdev:.4g} {row.unit} against {row.baseline:.4g} "
              f"({row.baseline_name}; {row.ratio_text()})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
