"""``distdev upgrade`` on the local engine: a running (or stopped) deployment moves to a new
build and keeps its state. The order of the steps, and why every service restarts, are
``upgrade_deployment``'s; here the local engine stops its deployment with ``down`` and starts a
build with ``up --detach``, over the same transport, its ingress on the same port. Callers see
the supervisor's stand-ins, then refused connections, while the services restart.
"""

from __future__ import annotations

from pathlib import Path

from .._protocol import Echo, UpgradeOptions
from .._upgrade import UpgradePlan, upgrade_deployment
from . import _supervisor as supervisor
from ._deployment import Deployment

__all__ = ["upgrade"]


def upgrade(out: Path, state: Path, options: UpgradeOptions, echo: Echo) -> UpgradePlan:
    """Move the deployment in ``state`` to the build in ``out``; raise ``UpgradeRefused``
    (naming each service's first divergence) if the new code does not replay a changed
    service's journal, having changed nothing."""
    out, state = out.resolve(), state.resolve()
    before = Deployment.load(state)
    journals = {sid: before.journal(sid) for sid in before.services}

    def start(build: Path) -> None:
        argv = ["up", str(build), "--state", str(state)]
        root = before.services.get(before.root)
        argv += ["--tcp"] if root is not None and root.address.startswith("tcp:") else []
        port = options.port if options.port is not None else (root.http if root else None)
        argv += ["--port", str(port)] if port is not None else []
        durable = before.durable if options.durable is None else options.durable
        argv += [] if durable else ["--no-sync"]
        supervisor.start_detached(argv, state)

    return upgrade_deployment(out, Path(before.out), state, journals, before.hash_seed,
                              supervisor.pid_alive(before.supervisor),
                              lambda: supervisor.down(state, echo), start, echo)
