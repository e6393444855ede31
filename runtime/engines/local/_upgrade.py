"""``distdev upgrade`` on the local engine: a running (or stopped) deployment moves to a new
build and keeps its state.

The order is what makes "nothing changes unless everything replays" hold:

1. The gate runs while the old deployment still serves: every changed service's journal is
   replayed against the new code. A divergence refuses the upgrade here, with nothing touched.
2. The deployment stops (``down``): services stop between calls, their journals durable.
3. A journal that grew since it was checked (calls arrived meanwhile) is checked again, whole.
   A divergence now starts the old build again over the untouched state and refuses.
4. The new code is appended to the changed journals, removed services are retired, and the
   new build starts over the state folder (``up``): every service restores from its journal,
   the changed ones with their new code, the new ones from the new build.

Every service restarts, not only the changed ones: the new build has a secret of its own, so
every edge's key changes with it (``_keys``), and a service still holding the old keys could
not call one holding the new. Callers outside see the deployment's stand-ins and refused
connections meanwhile, as for any restart.
"""

from __future__ import annotations

from pathlib import Path

from ...build import read_manifest
from ...errors import DeploymentError
from .._protocol import DeployOptions, Echo
from .._upgrade import (
    UpgradePlan,
    UpgradeRefused,
    check_changed,
    plan_upgrade,
    retire,
    write_new_code,
)
from . import _supervisor as supervisor
from ._deployment import Deployment

__all__ = ["upgrade"]


def upgrade(out: Path, state: Path, options: DeployOptions, echo: Echo) -> UpgradePlan:
    """Move the deployment in ``state`` to the build in ``out``; raise
    ``UpgradeRefused`` (naming each service's first divergence) if the new code does not
    replay a changed service's journal, having changed nothing."""
    out, state = out.resolve(), state.resolve()
    deployment = Deployment.load(state)
    manifest = read_manifest(out)
    journals = {sid: deployment.journal(sid) for sid in deployment.services}
    plan = plan_upgrade(out, manifest, journals, deployment.hash_seed)
    sizes = {sid: journals[sid].stat().st_size for sid in plan.changed}
    check_changed(plan, journals)
    if plan.refused:
        raise UpgradeRefused(plan)
    was_running = supervisor.pid_alive(deployment.supervisor)
    if was_running:
        echo(f"the new code replays {_count(plan.changed)}; stopping the deployment")
        supervisor.down(state, echo)
        grown = {sid for sid, size in sizes.items() if journals[sid].stat().st_size != size}
        check_changed(plan, journals, only=grown.__contains__)
        if plan.refused:
            echo("calls that arrived during the check do not replay; starting the old build "
                 "again")
            _start(Path(deployment.out), state, deployment, options)
            raise UpgradeRefused(plan)
    write_new_code(plan, manifest, journals, echo)
    retired = retire(state, plan.removed)
    if retired is not None:
        echo(f"retired {', '.join(plan.removed)}: their state is in {retired}")
    if was_running:
        _start(out, state, deployment, options)
    return plan


def _start(out: Path, state: Path, before: Deployment, options: DeployOptions) -> None:
    """Start ``out`` over ``state`` in the background, as the deployment ``before`` ran:
    over the same transport, its ingress on the same port."""
    argv = ["up", str(out), "--state", str(state)]
    root = before.services.get(before.root)
    argv += ["--tcp"] if root is not None and root.address.startswith("tcp:") else []
    port = options.port if options.port is not None else (root.http if root else None)
    argv += ["--port", str(port)] if port is not None else []
    argv += [] if options.durable else ["--no-sync"]
    try:
        supervisor.start_detached(argv, state)
    except DeploymentError as exc:
        raise DeploymentError(f"the upgraded deployment did not start: {exc}") from None


def _count(services: dict[str, list[str]]) -> str:
    if len(services) == 1:
        return "the journal of the changed service"
    return f"the journals of all {len(services)} changed services"
