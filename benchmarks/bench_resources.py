"""Measurement 11: a SQL query through a resource proxy, beside the same query run directly.

The app (``app.py``) declares ``db = resources.sql("db")`` (SQLite; a second build the same on
``engine="postgres"``), fills a table ``t(k INTEGER PRIMARY KEY, v TEXT)`` with ``ROWS`` rows at
build time, and exports ``lookups(n)``: ``n`` times ``db.query_one("SELECT v FROM t WHERE k =
?", [i % ROWS])``. Each query is a call-out of the root, journaled in its journal (call-out and
result records), and one transaction of the resource. Per-query time = the time of one
``lookups(n)`` call / ``n``:

* ``dev``: ``App`` in this process (``distdev dev``, tests): the resource runs in-process, on the
  caller's thread.
* ``up``: ``distdev up --detach`` (durable, Unix sockets): the root and the resource are two
  processes; the call ``lookups`` comes from this process over an authenticated connection.

Baselines, in the same run on the same table: ``sqlite3`` directly (one connection, the same
statement, autocommit), and ``psycopg`` directly on a PostgreSQL server distdev starts for the
purpose (``PostgresServer``, a Unix socket). PostgreSQL rows are skipped, saying why, where it
is not installed. Nothing is asserted.
"""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench_util import Row, Settings, median_seconds, progress, write_app

ROWS = 1000

APP = '''
    from distdev import resources

    db = resources.sql("db", engine="{engine}")
    db.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)")
    db.transaction([("INSERT INTO t VALUES (?, ?)", [i, f"value-{{i}}"]) for i in range({rows})])


    def lookups(n: int) -> int:
        found = 0
        for i in range(n):
            found += db.query_one("SELECT v FROM t WHERE k = ?", [i % {rows}]) is not None
        return found
'''


def _app(folder: Path, engine: str) -> Path:
    write_app(folder, {"app.py": APP.format(engine=engine, rows=ROWS)})
    return folder / "app.py"


def _direct_sqlite(path: Path, n: int) -> float:
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("CREATE TABLE IF NOT EXISTS t (k INTEGER PRIMARY KEY, v TEXT)")
    connection.executemany("INSERT OR REPLACE INTO t VALUES (?, ?)",
                           [(i, f"value-{i}") for i in range(ROWS)])

    def run() -> None:
        for i in range(n):
            connection.execute("SELECT v FROM t WHERE k = ?", (i % ROWS,)).fetchone()

    try:
        return median_seconds(run, 5) / n
    finally:
        connection.close()


def _direct_postgres(dsn: str, n: int) -> float:
    from distdev.resources._postgres import psycopg_module

    connection = psycopg_module().connect(dsn, autocommit=True)
    connection.execute("CREATE TABLE IF NOT EXISTS direct (k INTEGER PRIMARY KEY, v TEXT)")
    connection.execute("TRUNCATE direct")
    with connection.cursor() as cursor:
        cursor.executemany("INSERT INTO direct VALUES (%s, %s)",
                           [(i, f"value-{i}") for i in range(ROWS)])

    def run() -> None:
        for i in range(n):
            connection.execute("SELECT v FROM direct WHERE k = %s", (i % ROWS,)).fetchone()

    try:
        return median_seconds(run, 5) / n
    finally:
        connection.close()


def _dev(entry: Path, tmp: Path, n: int) -> float:
    import distdev

    app = distdev.App(entry, out=tmp / "build", state=tmp / "state").start()
    try:
        root = app.service("app")
        return median_seconds(lambda: root.lookups(n), 5) / n
    finally:
        app.close()


@contextlib.contextmanager
def _up(entry: Path, tmp: Path) -> Iterator[Any]:
    from distdev.engines import Connection
    from distdev.engines.local._deployment import Deployment

    distdev_cli = [sys.executable, "-m", "distdev"]
    out, state = tmp / "out", tmp / "state"
    subprocess.run([*distdev_cli, "build", str(entry), "-o", str(out)], check=True,
                   capture_output=True)
    subprocess.run([*distdev_cli, "up", str(out), "--state", str(state), "--detach"],
                   check=True, capture_output=True)
    try:
        deployment = Deployment.load(state)
        connection = Connection(deployment.services["app"].address, deployment.secret(),
                                "bench", 120)
        try:
            yield connection
        finally:
            connection.close()
    finally:
        subprocess.run([*distdev_cli, "down", "--state", str(state)], capture_output=True)


def _up_per_query(entry: Path, tmp: Path, n: int) -> float:
    with _up(entry, tmp) as connection:
        chains = iter(range(10**9))

        def run() -> None:
            connection.call("bench", f"bench-{next(chains)}", None, "lookups", [n], {})

        return median_seconds(run, 5) / n


def _postgres_available() -> str | None:
    from distdev.resources import ResourceError
    from distdev.resources._postgres import postgres_bin

    try:
        postgres_bin("initdb")
        import distdev.resources._postgres as pg

        pg.psycopg_module()
    except ResourceError as missing:
        return str(missing)
    return None


def measure(tmp: Path, settings: Settings) -> list[Row]:
    n = 200 if settings.quick else 2000
    rows: list[Row] = []
    progress("resources: SQLite, dev and up, beside sqlite3")
    sqlite_entry = _app(tmp / "sqlite-app", "sqlite")
    direct = _direct_sqlite(tmp / "direct.sqlite", n)
    dev = _dev(sqlite_entry, tmp / "sqlite-dev", n)
    up = _up_per_query(sqlite_entry, tmp / "sqlite-up", n)
    note = (f"SELECT by primary key, {ROWS:,} rows; per query over {n:,} in one export call, "
            "median of 5; each query a journaled call-out and one transaction")
    rows += [
        Row(key="resources.sqlite.dev", title="SQL query via resource proxy (dev, SQLite)",
            unit="us", distdev=dev * 1e6, baseline_name="sqlite3 directly",
            baseline=direct * 1e6, higher_is_better=False, goal="no target", note=note),
        Row(key="resources.sqlite.up", title="SQL query via resource proxy (up, SQLite)",
            unit="us", distdev=up * 1e6, baseline_name="sqlite3 directly",
            baseline=direct * 1e6, higher_is_better=False, goal="no target",
            note=note + "; the resource is a process of its own (Unix socket)"),
    ]
    missing = _postgres_available()
    if missing is not None:
        progress(f"resources: PostgreSQL rows skipped ({missing})")
        return rows
    from distdev.resources import PostgresServer, remove_cluster

    progress("resources: PostgreSQL, dev and up, beside psycopg")
    server = PostgresServer(tmp / "direct-pg")
    server.start()
    try:
        direct_pg = _direct_postgres(server.dsn, n)
    finally:
        server.stop()
        remove_cluster(server.folder)
    pg_entry = _app(tmp / "pg-app", "postgres")
    dev_pg = _dev(pg_entry, tmp / "pg-dev", n)
    up_pg = _up_per_query(pg_entry, tmp / "pg-up", n)
    remove_cluster(tmp / "pg-up" / "state" / "resources" / "app" / "db")
    rows += [
        Row(key="resources.postgres.dev", title="SQL query via resource proxy (dev, PostgreSQL)",
            unit="us", distdev=dev_pg * 1e6, baseline_name="psycopg directly",
            baseline=direct_pg * 1e6, higher_is_better=False, goal="no target", note=note),
        Row(key="resources.postgres.up", title="SQL query via resource proxy (up, PostgreSQL)",
            unit="us", distdev=up_pg * 1e6, baseline_name="psycopg directly",
            baseline=direct_pg * 1e6, higher_is_better=False, goal="no target",
            note=note + "; psycopg's pure-Python implementation on both sides"),
    ]
    return rows


if __name__ == "__main__":  # a quick look: python benchmarks/bench_resources.py
    import tempfile

    from bench_util import QUICK

    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        for row in measure(Path(folder), QUICK):
            print(f"{row.title}: {row.distdev:.1f} {row.unit} beside {row.baseline_name} "
                  f"{row.baseline:.1f} {row.unit}")
        print(f"({time.perf_counter() - started:.0f} s)")
