"""Engines: what places services on hosts at runtime, and the pieces every engine shares.

An ``Engine`` (``_protocol``; ``engine(name)`` in ``_engine``) is what the command line drives:
``local`` (``local/``: a process per service on this machine) and ``ray`` (``ray/``: a Ray actor
per service). What both run is engine-neutral and lives here: restoring a service from its state
journal and serving it (``_live``), seeding a state folder from a build (``_state``), per-service
credentials (``_keys``: the key of each call the build allows, held by its two ends;
``_confine``: a service process kept from reading any key file or the build's secret), the
authenticated socket transport (``_wire``, ``_client``, ``_server``), durable replies with group
commit (``_durable``), restore after a crash and answering re-sent calls (``_restore``), and the
root's HTTP ingress (``_ingress``). ``DevHost`` (``_dev``) keeps every service live in one
process instead: ``distdev dev`` and the debugger.

Layer: above ``build`` and ``replayer``; the highest runtime layer below ``cli``/``testing``.
"""

from __future__ import annotations

from ._client import AuthenticationError as AuthenticationError
from ._client import Connection as Connection
from ._client import Network as Network
from ._dev import DevHost as DevHost
from ._durable import GroupCommit as GroupCommit
from ._engine import ENGINES as ENGINES
from ._engine import engine as engine
from ._ingress import Ingress as Ingress
from ._live import LiveService as LiveService
from ._live import ServedService as ServedService
from ._live import go_live as go_live
from ._protocol import DeployOptions as DeployOptions
from ._protocol import Engine as Engine
from ._protocol import UpgradeOptions as UpgradeOptions

__all__ = ["AuthenticationError", "Connection", "Network", "DevHost", "GroupCommit", "ENGINES",
           "DeployOptions", "UpgradeOptions", "Engine", "engine", "Ingress", "LiveService", "ServedService",
           "go_live"]
