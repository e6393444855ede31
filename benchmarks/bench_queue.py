"""Measurement 11: queue throughput, messages/s handled, durable, beside a plain SQLite table.

distdev: a ``MessageStore`` (the store a queue resource keeps in the state folder) fed by
``PRODUCERS`` threads pushing one message at a time (each push returns once it is durable), and
drained by ``Delivery`` with two consumers, ``WINDOW`` deliveries in flight each; every delivery
is recorded done, durably, before the next is taken. The handler itself does nothing, so the
figure is the store's and the delivery loop's cost: what the queue adds to a consumer's call.

The same, end to end under ``distdev up``: a producer service pushes (each push a journaled
call-out, answered once durable), the queue's resource process delivers to a consumer service
process (each delivery an incoming call, answered once the consumer's journal is durable), and
the figure is messages handled by the consumer per second, from the first push to the last
message counted in its state.

Baseline: the queue a user would write with ``sqlite3`` — a table in WAL mode with
``synchronous=FULL``, the same producer threads (a connection each, a commit per push) and the
same number of consumer threads (a connection each) that claim the oldest unclaimed row (one
``UPDATE ... RETURNING``) and delete it once handled: two commits a message, at least once, as
durable as distdev's.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

from bench_util import Row, Settings, progress, write_app

from distdev.resources._delivery import Delivery, Subscription, group_specs
from distdev.resources._store import Message, MessageStore

PRODUCERS = 4
CONSUMERS = 2
WINDOW = 8


def _run_distdev(folder: Path, n: int) -> float:
    subscriptions = [Subscription(f"app/worker{i}", "handle") for i in range(CONSUMERS)]
    store = MessageStore(folder / "queue.log", group_specs("queue", subscriptions))
    handled = threading.Semaphore(0)

    def send(subscription: Subscription, seq: str, message: Message) -> None:
        handled.release()

    delivery = Delivery(store, "queue", subscriptions, send, lambda line: None, window=WINDOW)
    started = time.perf_counter()
    delivery.start()
    _produce(n, lambda i, k: store.push(f"app/producer{i}", k, b"message %d" % k))
    for _ in range(n):
        handled.acquire()
    while store.stats()["groups"]["consumers"]["delivered"] < n:
        time.sleep(0.001)
    took = time.perf_counter() - started
    delivery.stop()
    store.close()
    return n / took


def _produce(n: int, push: object) -> None:
    def producer(i: int) -> None:
        for k in range(i, n, PRODUCERS):
            push(i, k)  # type: ignore[operator]

    threads = [threading.Thread(target=producer, args=(i,)) for i in range(PRODUCERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None, timeout=60, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    return db


def _run_sqlite(folder: Path, n: int) -> float:
    path = folder / "queue.sqlite"
    setup = _connect(path)
    setup.execute("CREATE TABLE jobs (id INTEGER PRIMARY KEY, body BLOB, claimed INTEGER "
                  "NOT NULL DEFAULT 0)")
    setup.close()
    handled = [0]
    lock = threading.Lock()

    def consumer() -> None:
        db = _connect(path)
        while True:
            with lock:
                if handled[0] >= n:
                    break
            row = db.execute("UPDATE jobs SET claimed = 1 WHERE id = (SELECT id FROM jobs WHERE "
                             "claimed = 0 ORDER BY id LIMIT 1) RETURNING id, body").fetchone()
            if row is None:
                time.sleep(0.001)
                continue
            db.execute("DELETE FROM jobs WHERE id = ?", (row[0],))  # handled: acknowledged
            with lock:
                handled[0] += 1
        db.close()

    connections = [_connect(path) for _ in range(PRODUCERS)]
    started = time.perf_counter()
    consumers = [threading.Thread(target=consumer) for _ in range(CONSUMERS)]
    for thread in consumers:
        thread.start()
    _produce(n, lambda i, k: connections[i].execute("INSERT INTO jobs (body) VALUES (?)",
                                                    (b"message %d" % k,)))
    for thread in consumers:
        thread.join()
    took = time.perf_counter() - started
    for db in connections:
        db.close()
    return n / took


_UP_APP = {
    "app.py": """
        from distdev import import_service, resources

        jobs = resources.queue("jobs")
        worker = import_service("./worker.py")
        jobs.consume(worker.handle)

        def produce(start: int, count: int) -> int:
            for n in range(start, start + count):
                jobs.push(n)
            return count
    """,
    "worker.py": """
        handled = 0

        def handle(n: int) -> None:
            global handled
            handled += 1

        def count() -> int:
            return handled
    """,
}


def _run_up(folder: Path, n: int) -> float:
    """Messages/s handled by a consumer process, under ``distdev up``, pushed by the root in
    batches from ``PRODUCERS`` clients at once."""
    from distdev.engines import Connection
    from distdev.engines.local import Deployment

    cli = str(Path(sys.executable).with_name("distdev"))
    app, out, state = write_app(folder / "app", _UP_APP), folder / "out", folder / "state"
    subprocess.run([cli, "build", str(app / "app.py"), "-o", str(out)], check=True,
                   capture_output=True)
    subprocess.run([cli, "up", str(out), "--state", str(state), "--detach"], check=True,
                   capture_output=True)
    try:
        deployment = Deployment.load(state)
        secret = deployment.secret()

        def call(service_id: str, export: str, *args: object) -> object:
            connection = Connection(deployment.services[service_id].address, secret, "bench",
                                    120.0)
            try:
                return connection.call("bench", f"bench-{time.monotonic_ns()}", None, export,
                                       list(args), {})
            finally:
                connection.close()

        batch = 100
        started = time.perf_counter()
        _produce(n // batch, lambda i, k: call("app", "produce", k * batch + 1, batch))
        while call("app/worker", "count") < n:  # type: ignore[operator]
            time.sleep(0.01)
        return n / (time.perf_counter() - started)
    finally:
        subprocess.run([cli, "down", "--state", str(state)], capture_output=True, check=False)


def measure(tmp: Path, settings: Settings) -> list[Row]:
    n = 2_000 if settings.quick else 10_000
    reps = 1 if settings.quick else 3
    ours, theirs = [], []
    for rep in range(reps):
        progress(f"queue: {n:,} messages through a distdev store and a SQLite table ({rep + 1}/"
                 f"{reps})")
        for name, run, into in (("distdev", _run_distdev, ours), ("sqlite", _run_sqlite, theirs)):
            folder = tmp / f"{name}-{rep}"
            folder.mkdir(parents=True)
            into.append(run(folder, n))
    best, base = sorted(ours)[len(ours) // 2], sorted(theirs)[len(theirs) // 2]
    progress(f"queue: {n:,} messages end to end under distdev up")
    (tmp / "up").mkdir(parents=True)
    up = _run_up(tmp / "up", n)
    return [Row(
        key="queue.throughput", title="queue: messages handled per second, durable",
        unit="msg/s", distdev=best, baseline_name="SQLite table queue (WAL, synchronous=FULL)",
        baseline=base, higher_is_better=True,
        note=f"{n:,} messages, {PRODUCERS} producers, {CONSUMERS} consumers ({WINDOW} in flight "
             f"each for distdev); a push and a delivery durable before they are answered; "
             f"median of {reps}"),
        Row(key="queue.up", title="queue under up: messages handled per second, durable",
            unit="msg/s", distdev=up,
            baseline_name="SQLite table queue (WAL, synchronous=FULL)", baseline=base,
            higher_is_better=True,
            note=f"{n:,} messages pushed by a service ({PRODUCERS} clients calling it in "
                 "batches of 100), delivered by the queue's process to a consumer process; "
                 "every push, delivery and consumer journal durable; one run")]


if __name__ == "__main__":
    import sys
    import tempfile

    from bench_util import FULL, QUICK

    with tempfile.TemporaryDirectory(prefix="distdev-bench-") as scratch:
        for row in measure(Path(scratch), QUICK if "--quick" in sys.argv else FULL):
            print(f"{row.title}: distdev {row.distdev:,.0f} {row.unit}, {row.baseline_name} "
                  f"{row.baseline:,.0f} {row.unit} ({row.ratio_text()}); {row.note}")
