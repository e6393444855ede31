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

from ...build import Manifest
from ...errors import DeploymentError
from ...resources import (
    DUMP_FILE,
    SECRETS_FOLDER,
    Declared,
    PostgresServer,
    ResourceHost,
    data_folder,
    is_fresh,
    is_postgres,
    load_dump,
)
from .._client import Network
from .._confine import confine
from .._delivering import network_deliverer
from .._keys import ServiceKeys
from .._restore import DedupTable
from .._server import ServiceServer
from ._deployment import Deployment

__all__ = ["serve_resource", "resource_entries", "stop_postgres_servers"]


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
    dsn = None
    if is_postgres(declared):
        folder = data_folder(state, declared)
        dsn = described.get("dsn")
        if dsn is None:  # a server of its own, its cluster kept in the state folder
            server = PostgresServer(folder, log)
            server.start()
            dsn = server.dsn
        if is_fresh(dsn) and (folder / DUMP_FILE).is_file():
            load_dump(dsn, folder / DUMP_FILE)  # the build's content, once
            log(f"loaded what the build wrote ({folder / DUMP_FILE})")
    host = ResourceHost(declared, state, dsn=dsn)
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
    host.start_delivery(network_deliverer(resource_id, network), log)
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


def resource_entries(manifest: Manifest, postgres: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The deployment file's ``resources``: each resource's kind, parent and options, and for
    PostgreSQL the DSN of a server of the user's own where ``--postgres`` named one.

    ``postgres`` maps a resource id to a DSN; the key ``""`` (``--postgres DSN``, no id) is
    for the one PostgreSQL resource of a build that has one only."""
    on_postgres = [r.id for r in manifest.resources
                   if r.kind == "sql" and r.options.get("engine") == "postgres"]
    chosen = dict(postgres)
    if "" in chosen:
        if len(on_postgres) != 1:
            raise DeploymentError(
                f"--postgres DSN names no resource, and this build has "
                f"{len(on_postgres)} on PostgreSQL ({', '.join(on_postgres) or 'none'}): "
                "pass --postgres ID=DSN for each")
        chosen[on_postgres[0]] = chosen.pop("")
    unknown = sorted(set(chosen) - set(on_postgres))
    if unknown:
        raise DeploymentError(f"--postgres names {', '.join(unknown)}, which is no PostgreSQL "
                              f"resource of this build ({', '.join(on_postgres) or 'none'})")
    entries: dict[str, dict[str, Any]] = {}
    for r in manifest.resources:
        entries[r.id] = {"kind": r.kind, "parent": r.parent, "options": r.options}
        if r.id in chosen:
            entries[r.id]["dsn"] = chosen[r.id]
    return entries


def stop_postgres_servers(deployment: Deployment) -> None:
    """Stop the PostgreSQL servers of a deployment whose resource processes are gone (a
    killed process leaves its server running; the next start uses it, ``down`` stops it)."""
    for resource_id, described in deployment.resources.items():
        declared = Declared(resource_id, described["parent"], described["kind"],
                            dict(described["options"]))
        if is_postgres(declared) and "dsn" not in described:
            PostgresServer(data_folder(Path(deployment.state), declared)).stop()
