"""The local engine as the command line drives it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...errors import DistdevError, JournalError
from ...journal import read_journal
from .._keys import OperatorKey
from .._protocol import DeployOptions, Echo, UpgradeOptions
from .._upgrade import UpgradePlan
from . import _supervisor as supervisor
from . import _upgrade
from ._deployment import Deployment, ServiceEntry
from ._pool import pool_status

__all__ = ["LocalEngine"]


class LocalEngine:
    name = "local"

    def deploy(self, out: Path, state: Path, options: DeployOptions, echo: Echo) -> str:
        argv = ["up", str(out), "--state", str(state)]
        argv += ["--tcp"] if options.tcp else []
        argv += ["--port", str(options.port)] if options.port is not None else []
        argv += [] if options.durable else ["--no-sync"]
        for resource_id, dsn in options.postgres:
            argv += ["--postgres", f"{resource_id}={dsn}" if resource_id else dsn]
        deployment = supervisor.start_detached(argv, state)
        count = len(deployment.services)
        return (f"deployment up in the background: {count} service{'' if count == 1 else 's'} "
                f"(supervisor pid {deployment.supervisor}); `distdev down` stops it")

    def upgrade(self, out: Path, state: Path, options: UpgradeOptions, echo: Echo) -> UpgradePlan:
        return _upgrade.upgrade(out, state, options, echo)

    def down(self, state: Path, echo: Echo) -> str:
        stopped = supervisor.down(state, echo)
        return f"deployment in {state} stopped" if stopped else "nothing was running"

    def status(self, state: Path) -> dict[str, Any]:
        deployment = Deployment.load(state)
        running = supervisor.pid_alive(deployment.supervisor)
        rows: list[dict[str, Any]] = []
        for entry in deployment.services.values():
            resource = deployment.resources.get(entry.id)
            try:  # a resource keeps no journal: its storage is its state
                events: int | None = None if resource else len(
                    read_journal(deployment.journal(entry.id)).events)
            except JournalError:
                events = None
            rows.append({"id": entry.id, "kind": resource["kind"] if resource else "service",
                         "pid": entry.pid,
                         "alive": supervisor.pid_alive(entry.pid), "events": events,
                         # a supervisor that is gone left its last word: nothing runs
                         "state": entry.state if running else "stopped",
                         "restarts": entry.restarts, "last_error": entry.last_error,
                         "address": entry.address, "http": entry.http,
                         **_hosting(state, entry, running)})
        return {"engine": "local", "supervisor": deployment.supervisor,
                "running": running, "services": rows}

    def target(self, state: Path, service_id: str) -> tuple[str, OperatorKey]:
        deployment = Deployment.load(state)
        entry = deployment.services.get(service_id)
        if entry is None:
            raise DistdevError(f"no service {service_id!r} (services: "
                               f"{', '.join(deployment.services)})")
        return entry.address, OperatorKey(deployment.secret())


def _hosting(state: Path, entry: ServiceEntry, running: bool) -> dict[str, Any]:
    """How a service is hosted; a function's instances, as its pool last said."""
    if entry.max_instances is None:
        return {"hosting": "process"}
    report = pool_status(state, entry.id) if running else None
    instances = [] if report is None else [row for row in report["instances"] if row["alive"]]
    return {"hosting": "function", "max_instances": entry.max_instances,
            "instances": instances}
