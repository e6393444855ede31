"""What service code calls at build time: ``resources.sql``, ``kv`` and ``secret``.

Each declares a node of the service tree under the calling service and returns a proxy to it
(a ``ServiceProxy``: it crosses membranes by reference, like a proxy to a service). The types
below are what type checkers and the language server see; at runtime the value is the proxy.
"""

from __future__ import annotations

from typing import Any, Protocol

from ..compartment import current_service
from ..errors import PhaseError
from ..membrane import ServiceProxy
from ..service import Service
from ._kinds import kind

__all__ = ["sql", "kv", "secret", "declare", "SqlDatabase", "KeyValue", "Secret"]


class SqlDatabase(Protocol):
    """A SQL resource (``resources.sql``). Each call is one transaction; placeholders are
    ``?`` on every engine."""

    def execute(self, sql: str, params: Any = ()) -> int: ...
    def query(self, sql: str, params: Any = ()) -> list[tuple[Any, ...]]: ...
    def query_one(self, sql: str, params: Any = ()) -> tuple[Any, ...] | None: ...
    def executescript(self, script: str) -> None: ...
    def transaction(self, statements: list[tuple[str, Any]]) -> list[int]: ...


class KeyValue(Protocol):
    """A key-value resource (``resources.kv``)."""

    def get(self, key: str, default: Any = None) -> Any: ...
    def put(self, key: str, value: Any) -> None: ...
    def delete(self, key: str) -> bool: ...
    def scan(self, prefix: str = "") -> list[tuple[str, Any]]: ...


class Secret(Protocol):
    """A secret resource (``resources.secret``)."""

    def reveal(self) -> str: ...


def declare(kind_name: str, name: str, options: dict[str, Any]) -> ServiceProxy:
    """Declare a resource of ``kind_name`` under the calling service (the one seam every
    ``resources.<kind>`` goes through; a new kind's function calls it too)."""
    service = current_service()
    if not isinstance(service, Service):
        raise PhaseError(f"resources.{kind_name}() was called outside any service. A service "
                         "module calls it at its top level, at build time.")
    checked = kind(kind_name).check_options(f"{service.id}/{name}", dict(options))
    return service.declare_resource(kind_name, name, checked)


def sql(name: str, *, engine: str = "sqlite") -> SqlDatabase:
    """A SQL database named ``name`` under this service (id ``<this id>/<name>``): SQLite by
    default, ``engine="postgres"`` for PostgreSQL. What the build writes into it is its
    content when the deployment first starts."""
    proxy: Any = declare("sql", name, {"engine": engine})
    return proxy  # type: ignore[no-any-return]


def kv(name: str) -> KeyValue:
    """A key-value store named ``name`` under this service: get, put, delete, scan(prefix)."""
    proxy: Any = declare("kv", name, {})
    return proxy  # type: ignore[no-any-return]


def secret(name: str, *, generate: int | None = None, from_env: str | None = None) -> Secret:
    """A secret named ``name`` under this service: ``generate=N`` random bytes made at build,
    or ``from_env="VAR"`` read from the environment at deploy. ``reveal()`` returns it at
    runtime; its value is in no journal, bundle, manifest or log."""
    options: dict[str, Any] = {}
    if generate is not None:
        options["generate"] = generate
    if from_env is not None:
        options["from_env"] = from_env
    proxy: Any = declare("secret", name, options)
    return proxy  # type: ignore[no-any-return]
