"""A function (``host.function(max_instances=N)``) on Ray: an actor of its dispatcher, and up to
N instance actors.

``FunctionActor`` takes the function's name (``distdev:<id>``) and place in the deployment: it
answers at the function's published address (and, for a function root, on the ingress port) and
hands each call to an instance with the engine-neutral dispatcher (``engines._dispatch``, which
says how, and when instances start and stop). Its instances are ``ServiceActor``s in instance
mode, started from inside it (``ActorLauncher``), so Ray ties their fate to it: when the
dispatcher's actor dies, Ray ends its instances, and the dispatcher Ray restarts begins afresh
with one. Each instance journals in ``STATE/<id>/instances/<n>.cbor`` on the shared state path;
``STATE/<id>/instances.json`` lists them for ``distdev status``. The dispatcher runs none of the
function's code.
"""

from __future__ import annotations

import os
import threading
import urllib.parse
from pathlib import Path
from typing import Any

from .._dispatch import Dispatcher, Instance, status_writer
from .._keys import read_key_file
from ._actor import ServiceActor, ServiceLog
from ._layout import ActorInfo, RayDeployment

__all__ = ["FunctionActor", "ActorLauncher", "actor_env"]

START_TIMEOUT = 180.0
STOP_TIMEOUT = 30.0
_PASSED_ON = ("PYTHONHASHSEED", "DISTDEV_CALL_TIMEOUT", "XDG_CACHE_HOME",
              "DISTDEV_FUNCTION_IDLE")


def actor_env(hash_seed: str | None) -> dict[str, str]:
    """The environment every actor of a deployment gets (its hash seed, distdev's settings)."""
    env = {key: os.environ[key] for key in _PASSED_ON[1:] if key in os.environ}
    if hash_seed is not None:
        env["PYTHONHASHSEED"] = hash_seed
    return env


class ActorLauncher:
    """Instances as actors, created by the dispatcher's actor (so they end with it)."""

    def __init__(self, deployment: RayDeployment, service_id: str, log: ServiceLog) -> None:
        import ray

        self.ray = ray
        self.deployment = deployment
        self.service_id = service_id
        self.log = log
        self.remote = ray.remote(ServiceActor)
        self._stopping: dict[int, threading.Thread] = {}

    def launch(self, dispatcher: Dispatcher, instance: Instance) -> None:
        actor = self.remote.options(
            name=f"{self.deployment.actor_name(self.service_id)}#{instance.number}",
            namespace=self.deployment.namespace, num_cpus=0, max_restarts=0,
            max_concurrency=4, scheduling_strategy="SPREAD",
            runtime_env={"env_vars": actor_env(self.deployment.hash_seed)},
        ).remote(self.deployment.state, self.service_id, instance.number, str(instance.journal))
        instance.handle = actor
        threading.Thread(target=self._watch, args=(dispatcher, instance, actor), daemon=True,
                         name=f"distdev-instance-{instance.number}").start()

    def _watch(self, dispatcher: Dispatcher, instance: Instance, actor: Any) -> None:
        """Tell the dispatcher when the instance serves, then when it has ended."""
        ray = self.ray
        try:
            info: dict[str, Any] = ray.get(actor.info.remote(), timeout=START_TIMEOUT)
            instance.pid = info["pid"]
            ingress = None
            if info.get("http"):
                url = urllib.parse.urlsplit(info["http"])
                ingress = (url.hostname or "127.0.0.1", int(url.port or 80))
            dispatcher.ready(instance, info["address"], ingress)
            ray.get(actor.until_stopped.remote())
            why = "stopped"
        except Exception as exc:  # it died (or never started): the dispatcher replaces it
            why = f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[-1]}"
            ray.kill(actor, no_restart=True)
        dispatcher.exited(instance, why)

    def terminate(self, instance: Instance) -> None:
        actor = instance.handle
        if actor is None or instance.number in self._stopping:
            return

        def stop() -> None:
            try:
                self.ray.get(actor.stop.remote(), timeout=STOP_TIMEOUT)
            except Exception as exc:
                self.log(f"instance {instance.number} did not stop cleanly "
                         f"({type(exc).__name__}); killing it")
            self.ray.kill(actor, no_restart=True)

        thread = self._stopping[instance.number] = threading.Thread(target=stop, daemon=True)
        thread.start()

    def wait(self, instances: list[Instance], timeout: float) -> None:
        for instance in instances:
            thread = self._stopping.get(instance.number)
            if thread is not None:
                thread.join(timeout)


class FunctionActor:
    """A function's dispatcher, inside a Ray actor, with the function's name."""

    def __init__(self, state: str, service_id: str) -> None:
        import ray

        deployment = RayDeployment.load(Path(state))
        self.state, self.id = Path(state), service_id
        self.log = ServiceLog(deployment.log(service_id))
        context = ray.get_runtime_context()
        previous = ActorInfo.load(self.state, service_id)
        restarted = context.was_current_actor_reconstructed
        starts = (previous.starts if previous is not None and restarted else 0) + 1
        max_instances = deployment.functions[service_id]
        self.log(f"starting the dispatcher of up to {max_instances} instances as a Ray actor "
                 f"(start {starts}) on node {context.get_node_id()}")
        folder = self.state / service_id
        self.dispatcher = Dispatcher(
            service_id, read_key_file(deployment.key_file(service_id), service_id),
            max_instances, folder, deployment.journal(service_id),
            ActorLauncher(deployment, service_id, self.log), self.log,
            on_change=status_writer(folder, max_instances))
        node_ip = ray.util.get_node_ip_address()
        ingress = None
        if service_id == deployment.root and deployment.http is not None:
            ingress = (node_ip, deployment.http)
        self.dispatcher.start(f"tcp:{node_ip}:0", ingress, on_failure=self.log)
        url = None
        if ingress is not None:
            url = f"http://{node_ip}:{self.dispatcher.servers[1].server_address[1]}"
        self.info_record = ActorInfo(service_id, self.dispatcher.address, os.getpid(),
                                     context.get_node_id(), starts, url)
        self.info_record.save(self.state)
        self.log(f"serving on {self.info_record.address}")

    def info(self) -> dict[str, Any]:
        return vars(self.info_record).copy()

    def stop(self) -> None:
        """Stop answering and stop every instance (``down`` calls this before killing)."""
        self.dispatcher.stop()
        self.log("stopped")
