"""Measurement 10: concurrent clients of the shop's ingress, with the root's interleaving on and
off in the same run.

``examples/shop`` is copied twice into the scratch folder: as it is (its root declares
``host.process(http=8080, interleave=True)``) and with ``interleave=False`` (today's one call at
a time: the baseline). Each copy is built with ``distdev build`` and brought up with ``distdev up
--detach --port 0`` (the local engine, a process per service, durable: an fdatasync group
commit before every reply), and both deployments run side by side.

Clients are threads of this process, each with its own keep-alive ``http.client``
connection to the ingress, alternating two requests: ``POST /place_order`` (a checkout: the
root calls orders, which calls the catalog and billing, which calls its ledger) and ``POST
/shop_info`` (answered by the root alone: it calls nothing). For 1, 4 and 16 clients, the two
modes take turns within each repetition: a short warm-up, then every client runs for a fixed
time; each request's latency is kept by export. Throughput is every request completed (both
kinds) per second; p50 and p99 are per export. Every figure is the median over the repetitions.

The clients set ``TCP_QUICKACK`` before reading each response. The ingress sends a response's
headers and its body in two writes; on a keep-alive connection, Nagle's algorithm (the server's)
then holds the body until the client acknowledges the headers, which its delayed ACK puts off
for about 40 ms — a stall of every response that would hide everything measured here (it is what
a 40 ms p50 of an export that calls nothing looks like). Fresh connections per request do not
hit it (a new connection acknowledges at once), nor would one write per response.

Goals (for interleaving on, against its own single-client figures): 4 clients reach at least
1.8x one client's throughput, and ``shop_info``'s p50 with 4 clients stays within 2x of its p50
with one. Nothing is asserted. ``python benchmarks/bench_concurrency.py [--quick]`` runs it alone
and prints the table of both modes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import json
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from bench_util import Row, Settings, progress  # noqa: E402

SHOP = HERE.parent / "examples" / "shop"
CLIENTS = (1, 4, 16)
MODES = ("off", "on")
CHECKOUT, NOTHING = "place_order", "shop_info"
GOAL_THROUGHPUT, GOAL_P50 = 1.8, 2.0


@dataclasses.dataclass(frozen=True)
class Sizes:
    seconds: float  # each client's timed run, per level and repetition
    warmup: float
    reps: int


QUICK_SIZES = Sizes(seconds=1.5, warmup=0.3, reps=2)
FULL_SIZES = Sizes(seconds=4.0, warmup=0.5, reps=3)


@dataclasses.dataclass
class Level:
    """The figures of one mode at one number of clients, one entry per repetition."""

    throughput: list[float] = dataclasses.field(default_factory=list)
    p50: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    p99: dict[str, list[float]] = dataclasses.field(default_factory=dict)

    def add(self, requests: int, seconds: float, latencies: dict[str, list[float]]) -> None:
        self.throughput.append(requests / seconds)
        for export, times in latencies.items():
            ordered = sorted(times)
            self.p50.setdefault(export, []).append(statistics.median(ordered))
            self.p99.setdefault(export, []).append(ordered[min(len(ordered) - 1,
                                                               int(len(ordered) * 0.99))])


def _cli() -> str:
    return str(Path(sys.executable).with_name("distdev"))


def _run(*argv: str) -> str:
    done = subprocess.run([_cli(), *argv], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"distdev {' '.join(argv)} failed ({done.returncode}):\n"
                           f"{done.stdout}{done.stderr}")
    return done.stdout


def _shop(tmp: Path, mode: str) -> Path:
    """A copy of the shop whose root interleaves (``on``) or not (``off``)."""
    folder = tmp / f"shop-{mode}"
    shutil.copytree(SHOP, folder, ignore=shutil.ignore_patterns("__pycache__"))
    app = folder / "app.py"
    source = app.read_text()
    declared = "host.process(http=8080, interleave=True)"
    if declared not in source:
        raise RuntimeError(f"{SHOP / 'app.py'} no longer declares {declared!r}; update "
                           "bench_concurrency.py")
    app.write_text(source.replace(declared, f"host.process(http=8080, interleave={mode == 'on'})"))
    return app


def _up(tmp: Path, mode: str) -> tuple[Path, int]:
    out, state = tmp / f"out-{mode}", tmp / f"state-{mode}"
    _run("build", str(_shop(tmp, mode)), "-o", str(out))
    _run("up", str(out), "--state", str(state), "--detach", "--port", "0")
    report = json.loads(_run("status", "--state", str(state), "--json"))
    port = next(int(row["http"]) for row in report["services"] if row["id"] == "app")
    return state, port


class _Client(threading.Thread):
    """Alternates a checkout and the export that calls nothing until told to stop."""

    def __init__(self, port: int, name: str, start: threading.Barrier) -> None:
        super().__init__(daemon=True)
        self.port, self.name_, self.start_at = port, name, start
        self.timing = False
        self.stop = False
        self.latencies: dict[str, list[float]] = {CHECKOUT: [], NOTHING: []}
        self.error: BaseException | None = None
        self.connected = threading.Event()

    def _post(self, connection: http.client.HTTPConnection, export: str, body: bytes) -> None:
        started = time.perf_counter()
        connection.request("POST", f"/{export}", body, {"Content-Type": "application/json"})
        if connection.sock is not None:  # not the ingress's Nagle stall (the docstring)
            connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        response = connection.getresponse()
        payload = response.read()
        if response.status != 200:
            raise RuntimeError(f"POST /{export}: {response.status} {payload[:200]!r}")
        if self.timing:
            self.latencies[export].append(time.perf_counter() - started)

    def run(self) -> None:
        checkout = json.dumps({"user": self.name_, "item": "book", "quantity": 1}).encode()
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        try:
            self._post(connection, NOTHING, b"{}")  # connected and accepted before the start
            self.connected.set()
            self.start_at.wait()
            while not self.stop:
                self._post(connection, CHECKOUT, checkout)
                self._post(connection, NOTHING, b"{}")
        except BaseException as exc:
            self.error = exc
        finally:
            connection.close()


def _load(port: int, clients: int, sizes: Sizes) -> tuple[int, float, dict[str, list[float]]]:
    """Run ``clients`` clients: warm up, then time them; (requests, seconds, latencies)."""
    barrier = threading.Barrier(clients + 1)
    threads = [_Client(port, f"client-{i}", barrier) for i in range(clients)]
    for thread in threads:  # one at a time: the ingress's listen backlog is short
        thread.start()
        thread.connected.wait(60)
    barrier.wait()
    time.sleep(sizes.warmup)  # a benchmark's warm-up, not a test's wait
    for thread in threads:
        thread.timing = True
    started = time.perf_counter()
    time.sleep(sizes.seconds)
    for thread in threads:
        thread.timing = False
    seconds = time.perf_counter() - started
    for thread in threads:
        thread.stop = True
    for thread in threads:
        thread.join(180)
    failed = [t.error for t in threads if t.error is not None]
    if failed:
        raise RuntimeError(f"a client failed: {failed[0]!r}")
    latencies: dict[str, list[float]] = {CHECKOUT: [], NOTHING: []}
    for thread in threads:
        for export, times in thread.latencies.items():
            latencies[export].extend(times)
    return sum(len(v) for v in latencies.values()), seconds, latencies


def run_levels(tmp: Path, sizes: Sizes) -> dict[tuple[str, int], Level]:
    """Both deployments up, every level measured in turn; both taken down, even on error."""
    levels = {(mode, n): Level() for mode in MODES for n in CLIENTS}
    states: list[Path] = []
    try:
        ports = {}
        for mode in MODES:
            state, ports[mode] = _up(tmp, mode)
            states.append(state)
        for rep in range(sizes.reps):
            for n in CLIENTS:
                for mode in MODES:
                    progress(f"concurrency: rep {rep + 1}/{sizes.reps}, {n} clients, "
                             f"interleaving {mode}")
                    levels[(mode, n)].add(*_load(ports[mode], n, sizes))
    finally:
        for state in states:
            with contextlib.suppress(RuntimeError):
                _run("down", "--state", str(state))
    return levels


def measure(tmp: Path, settings: Settings) -> list[Row]:
    sizes = QUICK_SIZES if settings.quick else FULL_SIZES
    tmp.mkdir(parents=True, exist_ok=True)
    return _rows(run_levels(tmp, sizes), sizes)


def _rows(levels: dict[tuple[str, int], Level], sizes: Sizes) -> list[Row]:
    med = statistics.median
    how = (f"examples/shop under distdev up (durable), HTTP keep-alive clients alternating "
           f"{CHECKOUT} and {NOTHING}; {sizes.reps} reps of {sizes.seconds:g} s, median")
    rows = []
    for mode in MODES:
        one = levels[(mode, 1)]
        for n in CLIENTS[1:]:
            level = levels[(mode, n)]
            throughput = med(level.throughput)
            goal = mode == "on" and n == 4
            rows.append(Row(
                key=f"concurrency.throughput.{mode}.c{n}",
                title=f"shop throughput, {n} clients, interleave {mode}", unit="req/s",
                distdev=throughput, baseline_name="1 client", baseline=med(one.throughput),
                higher_is_better=True,
                goal=f">= {GOAL_THROUGHPUT:g}x 1 client" if goal else "-",
                met=throughput >= GOAL_THROUGHPUT * med(one.throughput) if goal else None,
                note=how))
            for export in (NOTHING, CHECKOUT):
                p50 = med(level.p50[export])
                alone = med(one.p50[export])
                goal_here = goal and export == NOTHING
                rows.append(Row(
                    key=f"concurrency.p50.{export}.{mode}.c{n}",
                    title=f"{export} p50, {n} clients, interleave {mode}", unit="s",
                    distdev=p50, baseline_name="1 client", baseline=alone,
                    higher_is_better=False,
                    goal=f"<= {GOAL_P50:g}x 1 client" if goal_here else "-",
                    met=p50 <= GOAL_P50 * alone if goal_here else None,
                    note=f"p99 {med(level.p99[export]) * 1e3:.1f} ms (1 client: "
                         f"{med(one.p99[export]) * 1e3:.1f} ms); {how}"))
    return rows


def table(levels: dict[tuple[str, int], Level]) -> str:
    """Both modes side by side: throughput, then p50 / p99 of each export, in ms."""
    med = statistics.median
    lines = [f"{'interleave':>10} {'clients':>7} {'req/s':>8}   "
             f"{CHECKOUT + ' p50/p99':>22}   {NOTHING + ' p50/p99':>22}"]
    for mode in MODES:
        for n in CLIENTS:
            level = levels[(mode, n)]
            cells = [f"{med(level.p50[e]) * 1e3:7.1f} / {med(level.p99[e]) * 1e3:7.1f} ms"
                     for e in (CHECKOUT, NOTHING)]
            lines.append(f"{mode:>10} {n:>7} {med(level.throughput):8.1f}   "
                         f"{cells[0]:>22}   {cells[1]:>22}")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    import tempfile

    sizes = QUICK_SIZES if "--quick" in argv else FULL_SIZES
    with tempfile.TemporaryDirectory(prefix="distdev-bench-concurrency-") as tmp:
        levels = run_levels(Path(tmp), sizes)
    print(table(levels))
    for row in _rows(levels, sizes):
        if row.goal != "-":
            print(f"{row.title}: {row.distdev:.4g} against {row.baseline:.4g} "
                  f"({row.goal}: {'met' if row.met else 'not met'})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
