"""What an engine is to the command line: deploy a build, stop it, report on it, and say where
a service of it listens. Nothing outside an engine's own package knows how it does these."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from ._keys import OperatorKey
from ._upgrade import UpgradePlan

__all__ = ["Engine", "DeployOptions", "UpgradeOptions", "Echo"]

Echo = Callable[[str], None]


@dataclasses.dataclass(frozen=True)
class DeployOptions:
    """How to deploy: ``port`` replaces the root's declared ingress port (0: any free one);
    ``durable`` makes each reply wait for fdatasync; ``address`` is an existing cluster's;
    ``postgres``: resource id -> the DSN of a PostgreSQL server to use for it (``""``: the
    build's one resource on PostgreSQL) instead of one the engine runs."""

    port: int | None = None
    durable: bool = True
    address: str | None = None
    tcp: bool = False
    postgres: tuple[tuple[str, str], ...] = ()


@dataclasses.dataclass(frozen=True)
class UpgradeOptions:
    """How an upgraded deployment restarts: ``port`` replaces the root's ingress port;
    ``durable`` makes each reply wait for fdatasync, or None: as the deployment was started."""

    port: int | None = None
    durable: bool | None = None


class Engine(Protocol):
    name: str

    def deploy(self, out: Path, state: Path, options: DeployOptions, echo: Echo) -> str:
        """Start the build in ``out`` in the background, with its state in ``state``; return
        once every service serves, with a line that says what runs where."""
        ...

    def upgrade(self, out: Path, state: Path, options: UpgradeOptions, echo: Echo) -> UpgradePlan:
        """Move the deployment in ``state`` to the build in ``out``, keeping every service's
        state (``_upgrade``); raise ``UpgradeRefused`` having changed nothing if the new code
        does not replay a changed service's journal. A running deployment runs the new build
        when this returns."""
        ...

    def down(self, state: Path, echo: Echo) -> str:
        """Stop the deployment in ``state``, whatever state it is in; say what was stopped."""
        ...

    def status(self, state: Path) -> dict[str, Any]:
        """``{"running": bool, "services": [{"id", "pid", "alive", "events", "restarts",
        "address", "http"}, ...], ...}``."""
        ...

    def target(self, state: Path, service_id: str) -> tuple[str, OperatorKey]:
        """Where ``service_id`` listens, and the operator's credentials to call it with."""
        ...
