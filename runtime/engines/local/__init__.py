"""The local engine: every service in its own process on this machine.

The supervisor (``_supervisor``) starts and restarts service processes (``_host``), which
restore themselves from their state journals and serve calls with the engine-neutral pieces of
``distdev.engines`` (transport, durability, restore). The deployment file (``_deployment``) is
how they, and the command line, find each other. ``LocalEngine`` (``_engine``) is what the
command line drives.
"""

from __future__ import annotations

from . import _supervisor as supervisor
from ._deployment import Deployment as Deployment
from ._deployment import ServiceEntry as ServiceEntry
from ._engine import LocalEngine as LocalEngine

__all__ = ["supervisor", "Deployment", "ServiceEntry", "LocalEngine"]
