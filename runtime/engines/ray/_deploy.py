"""``distdev deploy OUT --engine ray`` and ``down``/``status``/``call`` for it: the driver side.

``deploy`` seeds the state folder as the local engine does (each state journal a copy of its
build journal, each service's key file; the secret copied beside them for the operator), starts
a local Ray instance if no ``--address`` is given, creates one actor per service and waits until
every one has restored and listens. The command then disconnects: the actors are detached and
live on in the cluster. ``down`` asks each actor to stop (its journal made durable), kills it
without restart, and stops the local Ray instance if ``deploy`` started it. ``status`` and
``call`` need no Ray connection: they read the actors' files and talk to the services over their
sockets, with the operator's credentials.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..._spawn import python_module
from ...build import Manifest, ResourceSpec, read_manifest
from ...errors import DeploymentError, DistdevError, JournalError
from ...journal import read_journal
from ...resources import is_postgres, kind
from .._client import Connection
from .._dispatch import read_status
from .._keys import OperatorKey
from .._state import declared, ingress_port, seed_state
from .._upgrade import UpgradePlan, upgrade_deployment
from . import _cluster as cluster
from ._layout import PENDING, SECRET_FILE, ActorInfo, AddressBook, RayDeployment

START_TIMEOUT = 180.0
STOP_TIMEOUT = 30.0


def _refuse_if_deployed(state: Path) -> None:
    try:
        running = RayDeployment.load(state)
    except DistdevError:
        return
    if running.running:
        raise DistdevError(
            f"a Ray deployment is already running from {state} (Ray at {running.address}); "
            "stop it with `distdev down --engine ray` or pass another --state"
        )


def refuse_resources(manifest: Manifest) -> None:
    """A resource the Ray engine cannot host (a kind it does not, SQL on PostgreSQL) is refused
    before anything starts, naming the kind, rather than a deployment whose calls to it fail."""
    refused = [r for r in manifest.resources if not kind(r.kind).ray or is_postgres(declared(r))]
    if refused:
        listed = ", ".join(f"{r.id} ({_kind_name(r)})" for r in refused)
        kinds = ", ".join(sorted({_kind_name(r) for r in refused}))
        raise DeploymentError(
            f"the Ray engine does not host {kinds} resources ({listed}); deploy this build with "
            "the local engine (`distdev up`), or declare those resources only when not on Ray")


def _kind_name(spec: ResourceSpec) -> str:
    return "sql (postgres)" if is_postgres(declared(spec)) else spec.kind


def prepare(out: Path, state: Path, address: str | None, http: int | None,
            durable: bool) -> RayDeployment:
    """Seed the state folder and describe the deployment (not yet running)."""
    manifest = read_manifest(out)
    refuse_resources(manifest)
    _refuse_if_deployed(state)
    seed_state(out, state, manifest)
    for spec in manifest.services:
        ActorInfo.path(state, spec.id).unlink(missing_ok=True)
    secret = state / SECRET_FILE
    shutil.copyfile(out / manifest.secret, secret)
    os.chmod(secret, 0o600)
    return RayDeployment(
        out=str(out), state=str(state), address=address or "",
        namespace=cluster.namespace_for(state),
        hash_seed=manifest.hash_seed, root=manifest.root,
        services=[s.id for s in manifest.services] + [r.id for r in manifest.resources],
        exports=manifest.exports(),
        resources={r.id: {"kind": r.kind, "parent": r.parent, "options": r.options}
                   for r in manifest.resources},
        http=ingress_port(manifest, http), durable=durable,
        build_secret=str(out / manifest.secret),
        functions={s.id: s.host.instances for s in manifest.services
                   if s.host is not None and s.host.kind == "function"},
    )


def deploy(out: Path, state: Path, address: str | None, http: int | None, durable: bool,
           echo: Callable[[str], None]) -> RayDeployment:
    """Deploy the build in ``out`` on Ray; return once every service serves."""
    cluster.require_ray()
    out, state = out.resolve(), state.resolve()
    deployment = prepare(out, state, address, http, durable)
    if address is None:
        echo("starting a local Ray instance (no --address given)")
        deployment.address, deployment.head_pid, temp = cluster.start_local(
            state, state / "logs" / "ray-head.log")
        deployment.temp_dir = str(temp)
    deployment.save()  # the actors read it
    try:
        ray = cluster.connect(deployment.address, deployment.namespace)
        try:
            _start_actors(ray, deployment)
        finally:
            ray.shutdown()  # disconnects this driver; the detached actors stay
    except BaseException:
        if deployment.head_pid is not None:
            cluster.stop_local(deployment.head_pid)
        raise
    deployment.running = True
    deployment.save()
    return deployment


def _start_actors(ray: Any, deployment: RayDeployment) -> None:
    from ._actor import ServiceActor
    from ._function import FunctionActor, actor_env

    service, function = ray.remote(ServiceActor), ray.remote(FunctionActor)
    env = actor_env(deployment.hash_seed)
    actors = {
        sid: (function if sid in deployment.functions else service).options(
            name=deployment.actor_name(sid), namespace=deployment.namespace,
            lifetime="detached", num_cpus=0, max_restarts=-1, max_concurrency=2,
            scheduling_strategy="SPREAD", runtime_env={"env_vars": env},
        ).remote(deployment.state, sid)
        for sid in deployment.services
    }
    pending = {actor.info.remote(): sid for sid, actor in actors.items()}
    try:
        for ref, sid in pending.items():
            try:
                ray.get(ref, timeout=START_TIMEOUT)
            except ray.exceptions.GetTimeoutError:
                raise DistdevError(f"{sid} did not start within {START_TIMEOUT:.0f} s; its log "
                                   f"is {deployment.log(sid)}") from None
            except ray.exceptions.RayActorError as exc:
                raise DistdevError(f"{sid} could not start (its log is {deployment.log(sid)}): "
                                   f"{_cause(exc)}") from None
    except BaseException:
        for actor in actors.values():
            ray.kill(actor, no_restart=True)
        raise


def upgrade(out: Path, state: Path, http: int | None, durable: bool | None,
            echo: Callable[[str], None]) -> UpgradePlan:
    """Move the Ray deployment in ``state`` to the build in ``out`` (``upgrade_deployment``):
    its actors are stopped and the build deployed again on the same cluster — a local Ray
    instance started for it is stopped with them and started afresh.

    ``down`` and ``deploy`` run as commands of their own: the gate has loaded the services'
    code into this process, whose interposition (``datetime.date`` among others) Ray's
    serializers cannot be imported beside."""
    out, state = out.resolve(), state.resolve()
    before = RayDeployment.load(state)
    journals = {sid: before.journal(sid) for sid in before.services}
    where = [] if before.head_pid is not None else ["--address", before.address]
    port = http if http is not None else before.http
    if durable is None:
        durable = before.durable  # as it was deployed

    def start(build: Path) -> None:
        _command(echo, "deploy", str(build), "--engine", "ray", "--state", str(state), *where,
                 *(["--port", str(port)] if port is not None else []),
                 *([] if durable else ["--no-sync"]))

    def stop() -> None:
        _command(echo, "down", "--engine", "ray", "--state", str(state))

    return upgrade_deployment(out, Path(before.out), state, journals, before.hash_seed,
                              before.running, stop, start, echo)


def _command(echo: Callable[[str], None], *argv: str) -> None:
    """Run ``distdev ARGV`` in a child process; relay what it says; raise with its error."""
    done = subprocess.run(python_module("distdev.cli", *argv), capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, check=False)
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    for line in lines:
        echo(line)
    if done.returncode != 0:
        said = next((line for line in reversed(lines) if line.startswith("error")), None)
        raise DistdevError(f"`distdev {argv[0]} --engine ray` failed: "
                           f"{said or f'exit code {done.returncode}'}")


def _cause(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    errors = [line for line in text if "Error" in line and not line.startswith(" ")]
    return errors[-1] if errors else (text[-1] if text else type(exc).__name__)


def down(state: Path, echo: Callable[[str], None]) -> int:
    """Stop the Ray deployment in ``state``; return how many actors were stopped."""
    deployment = RayDeployment.load(state)
    stopped = 0
    head_alive = deployment.head_pid is None or cluster._alive(deployment.head_pid)
    if deployment.running and head_alive:
        ray = cluster.connect(deployment.address, deployment.namespace)
        try:
            for sid in deployment.services:
                stopped += _stop_actor(ray, deployment, sid, echo)
        finally:
            ray.shutdown()
    if deployment.head_pid is not None:
        cluster.stop_local(deployment.head_pid)
        echo(f"stopped the local Ray instance (keeper pid {deployment.head_pid})")
        deployment.head_pid = None
    for sid in deployment.services:
        ActorInfo.path(state, sid).unlink(missing_ok=True)
    deployment.running = False
    deployment.save()
    return stopped


def _stop_actor(ray: Any, deployment: RayDeployment, sid: str,
                echo: Callable[[str], None]) -> int:
    try:
        actor = ray.get_actor(deployment.actor_name(sid), namespace=deployment.namespace)
    except ValueError:
        return 0  # not there (already gone)
    try:
        ray.get(actor.stop.remote(), timeout=STOP_TIMEOUT)
    except Exception as exc:  # a dead or stuck actor is killed all the same
        echo(f"{sid} did not stop cleanly ({type(exc).__name__}); killing it")
    ray.kill(actor, no_restart=True)
    return 1


def service_address(state: Path, service_id: str) -> tuple[str, OperatorKey]:
    """Where ``service_id`` of the Ray deployment in ``state`` listens, and the operator's
    credentials."""
    deployment = RayDeployment.load(state)
    if service_id not in deployment.services:
        raise DistdevError(f"no service {service_id!r} (services: "
                           f"{', '.join(deployment.services)})")
    address = AddressBook(state, deployment.services)[service_id]
    if not deployment.running or address == PENDING:
        raise DistdevError(f"{service_id} is not running; deploy with `distdev deploy OUT "
                           f"--engine ray --state {state}` (`distdev status --engine ray`)")
    return address, OperatorKey(deployment.secret())


def status(state: Path) -> dict[str, Any]:
    """The deployment's services: where they listen, whether they answer, events, restarts."""
    deployment = RayDeployment.load(state)
    operator = OperatorKey(deployment.secret())
    rows = []
    for sid in deployment.services:
        info = ActorInfo.load(state, sid) if deployment.running else None
        resource = deployment.resources.get(sid)
        try:  # a resource keeps no journal
            events: int | None = None if resource else len(
                read_journal(deployment.journal(sid)).events)
        except JournalError:
            events = None
        rows.append({
            "id": sid, "kind": resource["kind"] if resource else "service",
            "pid": info.pid if info else None, "node": info.node if info else None,
            "alive": info is not None and _answers(info.address, sid, operator),
            "events": events, "restarts": info.starts - 1 if info else 0,
            "address": info.address if info else None, "http": info.http if info else None,
            **_hosting(deployment, sid, info is not None),
        })
    return {"engine": "ray", "ray": deployment.address, "namespace": deployment.namespace,
            "running": deployment.running, "local_ray": deployment.head_pid is not None,
            "services": rows}


def _hosting(deployment: RayDeployment, sid: str, running: bool) -> dict[str, Any]:
    """How a service is hosted; a function's instances, as its dispatcher last said."""
    if sid not in deployment.functions:
        return {"hosting": "process"}
    report = read_status(Path(deployment.state) / sid) if running else None
    instances = [] if report is None else [row for row in report["instances"]
                                           if row["state"] != "stopping"]
    return {"hosting": "function", "max_instances": deployment.functions[sid],
            "instances": instances}


def _answers(address: str, service_id: str, operator: OperatorKey) -> bool:
    """Whether the service completes a handshake at ``address`` (authenticating as a client)."""
    try:
        connection = Connection(address, operator, "", 5.0, service=service_id)
    except Exception:  # refused, reset, a malformed answer, another service: it does not serve
        return False
    connection.close()
    return True
