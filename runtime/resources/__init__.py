"""Resources: the services that run no code of the application's — a SQL database, a
key-value store, a secret (and the kinds registered beside them) — declared at build time::

    from distdev import resources

    db = resources.sql("library")                 # SQLite; engine="postgres" for PostgreSQL
    sessions = resources.kv("sessions")
    key = resources.secret("payments-key", generate=32)

Each is a node of the service tree (``app/library``) with its kind, held as a proxy. A call to
it is a call-out of the calling service, journaled in the caller's journal, so the caller
replays without it; the resource keeps no journal (its storage is its state). What the build
writes into it is its content when a deployment first starts it. See docs/resources.md.

Layer: above ``service`` (a declaration is a service's; a resource answers like a service),
below ``build`` (which hosts resources in one process) and ``engines`` (which serve them).
"""

from __future__ import annotations

from . import _kv as _kv
from . import _secret as _secret_kind  # noqa: F401 (registers the kind)
from . import _sql as _sql
from ._declare import KeyValue as KeyValue
from ._declare import Secret as Secret
from ._declare import SqlDatabase as SqlDatabase
from ._declare import declare as declare
from ._declare import kv as kv
from ._declare import secret as secret
from ._declare import sql as sql
from ._delivery import Rejected as Rejected
from ._host import RESOURCES_FOLDER as RESOURCES_FOLDER
from ._host import SECRETS_FOLDER as SECRETS_FOLDER
from ._host import Declared as Declared
from ._host import ResourceHost as ResourceHost
from ._host import data_folder as data_folder
from ._kinds import Backend as Backend
from ._kinds import Kind as Kind
from ._kinds import ResourceError as ResourceError
from ._kinds import kind as kind
from ._kinds import kinds as kinds
from ._kinds import register as register
from ._messaging import Deliver as Deliver
from ._messaging import Queue as Queue
from ._messaging import Topic as Topic
from ._messaging import queue as queue
from ._messaging import topic as topic
from ._postgres import DUMP_FILE as DUMP_FILE
from ._postgres import PostgresServer as PostgresServer
from ._postgres import is_fresh as is_fresh
from ._postgres import load_dump as load_dump
from ._postgres import remove_cluster as remove_cluster
from ._secret import VALUE_EXPORT as VALUE_EXPORT
from ._secret import SecretStore as SecretStore
from ._secret import from_environment as from_environment
from ._secret import generated as generated

__all__ = ["sql", "kv", "secret", "queue", "topic", "Queue", "Topic", "Deliver", "Rejected",
           "declare", "SqlDatabase", "KeyValue", "Secret", "ResourceHost", "Declared",
           "data_folder", "RESOURCES_FOLDER", "SECRETS_FOLDER", "Backend", "Kind",
           "ResourceError", "kind", "kinds", "register", "VALUE_EXPORT", "SecretStore",
           "from_environment", "generated", "DUMP_FILE", "PostgresServer", "is_fresh",
           "load_dump", "remove_cluster", "is_postgres"]


def is_postgres(declared: Declared) -> bool:
    """Whether a resource is a SQL database served by PostgreSQL."""
    return declared.kind == "sql" and declared.options.get("engine") == "postgres"
