"""``resources.sql``: a SQL database, SQLite (the standard library's) or PostgreSQL.

Every call is one transaction: ``execute``, ``query`` and ``executescript`` each commit or roll
back as a whole, and ``transaction`` runs a list of statements as one. Placeholders are ``?``
on both engines (PostgreSQL's are written for it), so code moves between them unchanged.

A call that arrives again with the same id (its caller crashed and re-sent it, or the network
dropped the answer) gets the outcome recorded with its first run, in the same transaction as
its writes (table ``distdev_calls``): a write happens once however often it is delivered.
"""

from __future__ import annotations

import contextlib
import datetime
import decimal
import hashlib
import sqlite3
import threading
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import cbor2

from ..membrane import from_wire, to_wire
from ._kinds import Kind, ResourceError, register
from ._postgres import psycopg_module

__all__ = ["SQL", "SqlBackend", "StoredBackend", "open_sqlite", "ENGINES", "postgres_placeholders"]

ENGINES = ("sqlite", "postgres")
SQLITE_FILE = "db.sqlite"

_CALLS_TABLE = "distdev_calls"
_KEEP_CALLS = 1000
"""Outcomes kept per caller: a re-sent call is one of its caller's latest."""

_SCALAR_RESULTS = (type(None), bool, int, float, str, bytes, decimal.Decimal, datetime.datetime,
                   datetime.date, datetime.time, datetime.timedelta, uuid.UUID)


class _NoClasses:
    """What decodes a recorded outcome: plain values only."""

    def resolve_class(self, module: str, qualname: str) -> type:
        raise ResourceError(f"a SQL outcome holds a {module}.{qualname}")

    def make_proxy(self, service_id: str) -> Any:
        raise ResourceError("a SQL outcome holds a proxy")


def postgres_placeholders(sql: str) -> str:
    """``sql`` with its ``?`` placeholders as PostgreSQL's ``%s`` and literal ``%`` doubled;
    a ``?`` inside a quoted string, a quoted name or a comment stays as written."""
    out: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if c in ("'", '"'):
            end = i + 1
            while end < n:
                if sql[end] == c:
                    if end + 1 < n and sql[end + 1] == c:  # a doubled quote is one quote
                        end += 2
                        continue
                    break
                end += 1
            out.append(sql[i:end + 1].replace("%", "%%"))
            i = end + 1
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            end = n if end < 0 else end
            out.append(sql[i:end].replace("%", "%%"))
            i = end
        elif c == "?":
            out.append("%s")
            i += 1
        elif c == "%":
            out.append("%%")
            i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _params(export: str, params: Any) -> Any:
    if params is None:
        return ()
    if isinstance(params, (list, tuple)):
        return tuple(params)
    if isinstance(params, dict):
        return params
    raise ResourceError(f"{export}(sql, params): params is a list or tuple of values (or a "
                        f"dict for :name placeholders), not a {type(params).__name__}")


def _row(row: Any, sql: str) -> tuple[Any, ...]:
    values = tuple(row)
    for value in values:
        if not isinstance(value, _SCALAR_RESULTS):
            if isinstance(value, memoryview):
                values = tuple(bytes(v) if isinstance(v, memoryview) else v for v in values)
                continue
            raise ResourceError(
                f"the query {sql!r} returned a {type(value).__name__}, which cannot cross a "
                "membrane; cast the column in SQL (CAST(x AS TEXT)) or select its parts")
    return values


class _Connection:
    """The engine under a SQL resource: one DB-API connection used one call at a time."""

    placeholder_sql: Any = staticmethod(lambda sql: sql)
    blob = "BLOB"

    def adapt(self, params: Any) -> Any:
        return params

    def changes(self, cursor: Any) -> Any:
        """A mark of what this connection has written, to tell whether a statement wrote."""
        return None

    def wrote(self, cursor: Any, before: Any) -> bool:
        return True

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.lock = threading.Lock()

    @contextlib.contextmanager
    def transaction(self, read_only: bool = False) -> Iterator[Any]:
        raise NotImplementedError

    def executescript(self, cursor: Any, script: str) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self.connection.close()


class _Sqlite(_Connection):
    def __init__(self, path: Path) -> None:
        connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=FULL")  # an answered write survives a crash
        super().__init__(connection)

    @contextlib.contextmanager
    def transaction(self, read_only: bool = False) -> Iterator[Any]:
        cursor = self.connection.cursor()
        # A writer takes the write lock at once (no upgrade to fail half-way); a reader's
        # transaction commits nothing, so it costs no sync.
        cursor.execute("BEGIN" if read_only else "BEGIN IMMEDIATE")
        try:
            yield cursor
        except BaseException:
            cursor.execute("ROLLBACK")
            raise
        cursor.execute("COMMIT")

    def changes(self, cursor: Any) -> Any:
        return self.connection.total_changes

    def wrote(self, cursor: Any, before: Any) -> bool:
        return bool(self.connection.total_changes != before)

    def adapt(self, params: Any) -> Any:
        """Parameters as SQLite takes them: the membrane's Decimal, date, time and UUID values
        as the text SQLite's own functions read (sqlite3's adapters are process-wide, and
        the application's own use of sqlite3 is none of distdev's business)."""
        if isinstance(params, dict):
            return {k: _sqlite_value(v) for k, v in params.items()}
        return tuple(_sqlite_value(v) for v in params)

    def executescript(self, cursor: Any, script: str) -> None:
        # sqlite3's executescript commits first; run the statements one by one instead, so
        # the script stays one transaction.
        for statement in _statements(script):
            cursor.execute(statement)


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, (decimal.Decimal, uuid.UUID)):
        return str(value)
    if isinstance(value, (datetime.date, datetime.time)):  # datetime is a date
        return value.isoformat(sep=" ") if isinstance(value, datetime.datetime) \
            else value.isoformat()
    return value


def _statements(script: str) -> Iterator[str]:
    """The statements of a script, split at each ';' that ends one (not one in a string)."""
    start = 0
    for end, char in enumerate(script):
        if char == ";" and sqlite3.complete_statement(script[start:end + 1]):
            if script[start:end].strip():
                yield script[start:end + 1]
            start = end + 1
    if script[start:].strip():
        yield script[start:]


class _Postgres(_Connection):
    placeholder_sql = staticmethod(postgres_placeholders)
    blob = "BYTEA"

    def __init__(self, dsn: str) -> None:
        super().__init__(psycopg_module().connect(dsn, autocommit=True))

    @contextlib.contextmanager
    def transaction(self, read_only: bool = False) -> Iterator[Any]:
        with self.connection.transaction(), self.connection.cursor() as cursor:
            yield cursor

    def executescript(self, cursor: Any, script: str) -> None:
        cursor.execute(script)  # no parameters: psycopg sends it as one simple query

    def wrote(self, cursor: Any, before: Any) -> bool:
        return not str(cursor.statusmessage or "SELECT").startswith("SELECT")


class StoredBackend:
    """A resource stored in a SQL database: each call one transaction, and the outcome of a
    call with an id recorded in it, so that a re-sent call is answered from the record."""

    kind: Kind
    methods: dict[str, Any]
    reads: frozenset[str] = frozenset()
    """The methods meant to change nothing: their outcome is recorded only if they wrote after
    all (``INSERT ... RETURNING`` through ``query``). A re-sent read has no effect to repeat
    (its caller journals the answer it gets), and a transaction that wrote nothing waits for
    no disk."""

    def __init__(self, resource_id: str, db: _Connection) -> None:
        self.id = resource_id
        self.db = db
        with db.lock, db.transaction() as cursor:
            cursor.execute(f"CREATE TABLE IF NOT EXISTS {_CALLS_TABLE} (caller TEXT NOT NULL, "
                           f"seq TEXT NOT NULL, number BIGINT, args TEXT NOT NULL, "
                           f"outcome {db.blob} NOT NULL, PRIMARY KEY (caller, seq))")

    def call(self, caller: str, caller_seq: int | str | None, export: str,
             args: list[Any], kwargs: dict[str, Any]) -> Any:
        method = self.methods.get(export)
        if method is None:
            raise ResourceError(f"{self.kind.name} resource {self.id} has no method {export!r}; "
                                f"it has: {', '.join(self.kind.exports)}")
        db = self.db
        read_only = export in self.reads
        key = None if caller_seq is None else (caller, str(caller_seq))
        digest = hashlib.sha256(cbor2.dumps([to_wire(args, "args"), to_wire(kwargs, "kwargs")])
                                ).hexdigest()
        with db.lock, db.transaction(read_only) as cursor:
            if key is not None:
                recorded = self._recorded(cursor, key, digest)
                if recorded is not _NONE:
                    return recorded
            before = db.changes(cursor)
            result = self._run(method, cursor, export, args, kwargs)
            if key is not None and (not read_only or db.wrote(cursor, before)):
                self._record(cursor, key, caller_seq, digest, result)
            return result

    def _run(self, method: Any, cursor: Any, export: str, args: list[Any],
             kwargs: dict[str, Any]) -> Any:
        try:
            return method(self, cursor, *args, **kwargs)
        except TypeError as exc:
            raise ResourceError(f"{self.id}.{export}{self.kind.exports[export]}: {exc}") from None

    def _recorded(self, cursor: Any, key: tuple[str, str], digest: str) -> Any:
        cursor.execute(self.db.placeholder_sql(
            f"SELECT args, outcome FROM {_CALLS_TABLE} WHERE caller = ? AND seq = ?"), key)
        row = cursor.fetchone()
        if row is None or row[0] != digest:  # another call under a reused id runs anew
            return _NONE
        return from_wire(cbor2.loads(bytes(row[1])), _NoClasses())

    def _record(self, cursor: Any, key: tuple[str, str], caller_seq: int | str | None,
                digest: str, result: Any) -> None:
        sql = self.db.placeholder_sql
        number = caller_seq if isinstance(caller_seq, int) else None
        cursor.execute(sql(f"DELETE FROM {_CALLS_TABLE} WHERE caller = ? AND seq = ?"), key)
        cursor.execute(sql(f"INSERT INTO {_CALLS_TABLE} VALUES (?, ?, ?, ?, ?)"),
                       (*key, number, digest, cbor2.dumps(to_wire(result, "a SQL outcome"))))
        if number is not None and number % 100 == 0:
            cursor.execute(sql(f"DELETE FROM {_CALLS_TABLE} WHERE caller = ? AND number < ?"),
                           (key[0], number - _KEEP_CALLS))

    def close(self) -> None:
        self.db.close()


class SqlBackend(StoredBackend):
    """A SQL resource's storage, answering ``execute``, ``query``, ``query_one``,
    ``executescript`` and ``transaction``."""

    def _execute(self, cursor: Any, sql: str, params: Any = None) -> int:
        cursor.execute(self.db.placeholder_sql(_sql("execute", sql)),
                       self.db.adapt(_params("execute", params)))
        return int(cursor.rowcount)

    def _query(self, cursor: Any, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        cursor.execute(self.db.placeholder_sql(_sql("query", sql)),
                       self.db.adapt(_params("query", params)))
        return [_row(row, sql) for row in cursor.fetchall()]

    def _query_one(self, cursor: Any, sql: str, params: Any = None) -> tuple[Any, ...] | None:
        rows = self._query(cursor, sql, params)
        return rows[0] if rows else None

    def _executescript(self, cursor: Any, script: str) -> None:
        self.db.executescript(cursor, _sql("executescript", script))

    def _transaction(self, cursor: Any, statements: list[Any]) -> list[int]:
        counts = []
        for i, statement in enumerate(statements):
            if isinstance(statement, str):
                statement = (statement, ())
            if not isinstance(statement, (list, tuple)) or len(statement) != 2 or not isinstance(
                    statement[0], str):
                raise ResourceError(f"transaction(statements): statement {i + 1} is (sql, "
                                    "params) or a string, not " + repr(statement)[:60])
            sql, params = statement
            counts.append(self._execute(cursor, sql, params))
        return counts

    methods = {"execute": _execute, "query": _query, "query_one": _query_one,
               "executescript": _executescript, "transaction": _transaction}
    reads = frozenset({"query", "query_one"})


_NONE = object()


def _sql(export: str, sql: Any) -> str:
    if not isinstance(sql, str):
        raise ResourceError(f"{export}() takes the SQL as a string, not a {type(sql).__name__}")
    return sql


def open_sqlite(folder: Path) -> _Connection:
    folder.mkdir(parents=True, exist_ok=True)
    return _Sqlite(folder / SQLITE_FILE)


def _open(resource_id: str, options: Mapping[str, Any], folder: Path) -> SqlBackend:
    folder.mkdir(parents=True, exist_ok=True)
    if options.get("engine", "sqlite") == "sqlite":
        return SqlBackend(resource_id, _Sqlite(folder / SQLITE_FILE))
    dsn = options.get("dsn")
    if not isinstance(dsn, str):
        raise ResourceError(f"{resource_id}: no PostgreSQL server to connect to (its host "
                            "starts one, or `distdev up --postgres DSN` names one)")
    return SqlBackend(resource_id, _Postgres(dsn))


def _check_options(resource_id: str, options: dict[str, Any]) -> dict[str, Any]:
    engine = options.pop("engine", "sqlite")
    if options:
        raise ResourceError(f"resources.sql({resource_id.rpartition('/')[2]!r}) takes engine= "
                            f"only, not {', '.join(options)}")
    if engine not in ENGINES:
        raise ResourceError(f"resources.sql(..., engine={engine!r}): the engine is 'sqlite' "
                            "(the default) or 'postgres'")
    return {"engine": engine}


SQL = register(Kind(
    name="sql",
    exports={
        "execute": "(sql: str, params: list | tuple | dict = ()) -> int",
        "query": "(sql: str, params: list | tuple | dict = ()) -> list[tuple]",
        "query_one": "(sql: str, params: list | tuple | dict = ()) -> tuple | None",
        "executescript": "(script: str) -> None",
        "transaction": "(statements: list[tuple[str, list | tuple | dict]]) -> list[int]",
    },
    docs={
        "execute": "Run one statement in a transaction of its own; the number of rows it "
                   "changed.",
        "query": "Run a query; its rows, as tuples.",
        "query_one": "Run a query; its first row, or None.",
        "executescript": "Run statements separated by ';' (a schema) as one transaction.",
        "transaction": "Run (sql, params) statements as one transaction; each one's row count.",
    },
    open=_open,
    check_options=_check_options,
    ray=True,  # served by an actor, its storage in the shared state folder
))
SqlBackend.kind = SQL
