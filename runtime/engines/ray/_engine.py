"""The Ray engine as the command line drives it. Ray is imported only by what connects to it
(deploy, down); status and call read the state folder and talk to the services directly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...errors import DistdevError
from .._keys import OperatorKey
from .._protocol import DeployOptions, Echo, UpgradeOptions
from .._upgrade import UpgradePlan
from . import _cluster as cluster

__all__ = ["RayEngine"]


class RayEngine:
    name = "ray"

    def deploy(self, out: Path, state: Path, options: DeployOptions, echo: Echo) -> str:
        if options.tcp:
            raise DistdevError("the Ray engine always uses TCP between nodes; drop --tcp")
        cluster.require_ray()
        from . import _deploy

        deployment = _deploy.deploy(out, state, options.address, options.port, options.durable,
                                    echo)
        where = ("a local Ray instance started for it" if deployment.head_pid is not None
                 else f"Ray at {deployment.address}")
        count = len(deployment.services)
        return (f"deployment up on {where}: {count} service{'' if count == 1 else 's'} as "
                f"actors; `distdev down --engine ray --state {state}` stops it")

    def upgrade(self, out: Path, state: Path, options: UpgradeOptions, echo: Echo) -> UpgradePlan:
        cluster.require_ray()
        from . import _deploy

        return _deploy.upgrade(out, state, options.port, options.durable, echo)

    def down(self, state: Path, echo: Echo) -> str:
        cluster.require_ray()
        from . import _deploy

        stopped = _deploy.down(state, echo)
        return (f"Ray deployment in {state} stopped ({stopped} actors)" if stopped
                else "no actor was running")

    def status(self, state: Path) -> dict[str, Any]:
        cluster.check_ray_installed()
        from . import _deploy

        return _deploy.status(state)

    def target(self, state: Path, service_id: str) -> tuple[str, OperatorKey]:
        cluster.check_ray_installed()
        from . import _deploy

        return _deploy.service_address(state, service_id)
