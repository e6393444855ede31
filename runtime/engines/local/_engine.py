"""The local engine as the command line drives it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...errors import DistdevError, JournalError
from ...journal import read_journal
from .._keys import OperatorKey
from .._protocol import DeployOptions, Echo
from . import _supervisor as supervisor
from ._deployment import Deployment

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
                         "address": entry.address, "http": entry.http})
        return {"engine": "local", "supervisor": deployment.supervisor,
                "running": running, "services": rows}

    def target(self, state: Path, service_id: str) -> tuple[str, OperatorKey]:
        deployment = Deployment.load(state)
        entry = deployment.services.get(service_id)
        if entry is None:
            raise DistdevError(f"no service {service_id!r} (services: "
                               f"{', '.join(deployment.services)})")
        return entry.address, OperatorKey(deployment.secret())
