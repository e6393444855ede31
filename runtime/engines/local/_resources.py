"""A resource process of the local engine: one resource, served over the authenticated wire.

Started by the supervisor exactly like a service process (``_host`` hands over to ``serve``
when the id is a resource's), supervised, restarted and logged like one. It restores nothing
— a resource keeps no journal; its storage under ``STATE/resources/<id>/`` (a SQLite file, a
PostgreSQL data folder) is its state, and ``STATE/secrets`` for a secret — and answers the
services that hold a proxy to it, each proven by the key of its edge. A call re-sent after
a crash is answered from the outcome its storage recorded with the first run.

A resource that calls services (a queue or topic delivering its messages) calls them through
the deployment's network as itself, with the key of each edge the manifest gives it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ...resources import SECRETS_FOLDER, Declared, Deliver, Rejected, ResourceHost
from ...service import CallFailed
from .._client import Network
from .._confine import confine
from .._keys import ServiceKeys
from .._restore import DedupTable
from .._server import ServiceServer
from ._deployment import Deployment

__all__ = ["serve_resource"]


def _deliverer(resource_id: str, network: Network) -> Deliver:
    """A delivery as a call over the network: re-sent, with the same call id, while the
    consumer restarts (``Network.call``); its code's exception is a failed attempt."""
    def deliver(service_id: str, export: str, caller_seq: str, args: list[Any]) -> Any:
        try:
            return network.call(service_id, f"{resource_id}-{caller_seq}", caller_seq, export,
                                args, {})
        except CallFailed as failed:
            raise Rejected(f"{failed.info.type}: {failed.info.message}") from None
    return deliver


class _Durable:
    """A resource's answer leaves once its storage committed (each call is a transaction)."""

    def wait_durable(self) -> None:
        pass


def serve_resource(deployment: Deployment, resource_id: str, keys: ServiceKeys,
                   stop: threading.Event, log: Callable[[str], None], ready: str) -> None:
    described = deployment.resources[resource_id]
    declared = Declared(resource_id, described["parent"], described["kind"],
                        dict(described["options"]))
    state = Path(deployment.state)
    server = None
    host = ResourceHost(declared, state)
    protected = deployment.key_material()
    if declared.kind == "secret":  # its own store is what it serves
        protected = [p for p in protected if p != state / SECRETS_FOLDER]
    confine(protected, log)
    served = ServiceServer(host, deployment.services[resource_id].address, keys, _Durable(),
                           DedupTable(), log)
    thread = threading.Thread(target=served.serve_forever, name="distdev-resource", daemon=True)
    thread.start()
    network = Network(resource_id, {k: v.address for k, v in deployment.services.items()},
                      deployment.exports, keys)
    host.start_delivery(_deliverer(resource_id, network), log)
    log(f"serving {declared.kind} resource {resource_id}")
    log(ready)
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    host.stop_delivery()
    network.close()
    served.shutdown()
    host.close()
    if server is not None:
        server.stop()
