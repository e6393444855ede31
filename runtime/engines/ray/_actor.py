"""One service as a Ray actor.

``ServiceActor`` is a plain class; ``deploy`` turns it into a named, detached actor. Its
constructor is the whole start-up, and Ray runs it again after the actor's process dies
(``max_restarts``): restore from the state journal through the local engine's ``go_live`` (torn
tail and unfinished call cut aside, whole journal replayed, journaling again with group commit),
serve the local engine's authenticated socket on this node's address, serve the ingress if this
is the root, and publish where it listens (``ActorInfo``). Calls already acknowledged are
answered from the journal if a caller re-sends them (``DedupTable``), so a restart loses none
and runs none twice.

An actor's keys are its key file in the shared state folder (``STATE/keys``), read by the
constructor; Ray carries only the state path and the service id. Before serving, the
constructor's thread confines itself (``_confine``), and every thread that runs the service's
calls is started from it afterwards, so none of them can read a key file or the secret.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

from ...build import APP_FILES
from .._client import Connection, Network
from .._confine import confine
from .._dispatch import InstanceNetwork
from .._keys import read_key_file
from .._live import ServedService, go_live
from ._layout import PENDING, ActorInfo, AddressBook, RayDeployment


class ServiceLog:
    """Appends an actor's own messages to ``STATE/logs/<id>.log`` (Ray keeps its stdout in
    its temporary folder, on whichever node ran it)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()

    def __call__(self, message: str) -> None:
        line = f"{time.strftime('%H:%M:%S')} [{os.getpid()}] {message}\n"
        with self._lock, open(self.path, "a") as f:
            f.write(line)


class RayNetwork(Network):
    """The local engine's transport, with addresses that follow restarted actors (a stale
    address whose port another service took is refused by ``Connection``: looked up again)."""

    def _connection(self, target: str, address: str, deadline: float) -> Connection:
        if address == PENDING:
            raise ConnectionRefusedError(f"{target} is starting")
        return super()._connection(target, address, deadline)


class _RayInstanceNetwork(InstanceNetwork, RayNetwork):
    """An instance of a function's transport: its call ids name it, its addresses follow
    restarted actors."""


class ServiceActor:
    """A service restored from its journal and served, inside a Ray actor; or, with
    ``instance``, one instance of a function (``_function``), restored into ``journal``, which
    its function's dispatcher finds through ``info`` (it publishes no address of its own)."""

    def __init__(self, state: str, service_id: str, instance: int | None = None,
                 journal: str | None = None) -> None:
        import ray

        deployment = RayDeployment.load(Path(state))
        self.state = Path(state)
        self.id = service_id
        self.log = ServiceLog(deployment.log(service_id))
        self._stopped = threading.Event()
        context = ray.get_runtime_context()
        previous = ActorInfo.load(self.state, service_id) if instance is None else None
        restarted = context.was_current_actor_reconstructed
        starts = (previous.starts if previous is not None and restarted else 0) + 1
        what = "a Ray actor" if instance is None else f"instance {instance}, a Ray actor"
        self.log(f"starting as {what} (start {starts}) on node {context.get_node_id()}")
        keys = read_key_file(deployment.key_file(service_id), service_id)
        book = AddressBook(self.state, deployment.services)
        self.network = (RayNetwork(service_id, book, deployment.exports, keys)
                        if instance is None else
                        _RayInstanceNetwork(service_id, book, deployment.exports, keys,
                                            instance=instance))
        live = go_live(Path(journal) if journal else deployment.journal(service_id),
                       self.network, durable=deployment.durable,
                       app_files=Path(deployment.out) / APP_FILES, log=self.log)
        confine(deployment.key_material(), self.log)  # before the threads that serve calls
        node_ip = ray.util.get_node_ip_address()
        ports: list[int] = []
        if service_id == deployment.root and deployment.http is not None:
            # After a restart on "any free port", the port it had, if still free.
            if not deployment.http and restarted and previous is not None and previous.http:
                ports.append(int(previous.http.rpartition(":")[2]))
            # An instance's ingress is its own, on any port: its dispatcher has the public one.
            ports.append((deployment.http or 0) if instance is None else 0)
        self.served = ServedService(live, self.network, f"tcp:{node_ip}:0", self.log,
                                    ingress_ports=ports, ingress_host=node_ip)
        ingress = self.served.ingress
        self.info_record = ActorInfo(service_id, f"tcp:{node_ip}:{self.served.port}",
                                     os.getpid(), context.get_node_id(), starts,
                                     ingress.url if ingress else None)
        if instance is None:
            self.info_record.save(self.state)
        self.log(f"serving on {self.info_record.address}")

    def info(self) -> dict[str, Any]:
        """Where this service listens, its pid, node and starts."""
        return vars(self.info_record).copy()

    def until_stopped(self) -> None:
        """Return once ``stop`` has run: a function's dispatcher learns from this call's
        failure that the actor died."""
        self._stopped.wait()

    def stop(self) -> None:
        """Stop serving and make the journal durable (``down`` calls this before killing)."""
        self.served.stop()
        self.log("stopped")
        self._stopped.set()

