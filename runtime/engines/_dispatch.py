"""A function's instances behind one address (``host.function(max_instances=N)``), for every
engine: who gets the next call, when instances start and stop. Engine-neutral: how an instance
is started and stopped (a process, a Ray actor) is its engine's ``Launcher``.

The dispatcher answers at the function's address itself: it completes the function's handshake
with the function's own keys (as the local supervisor's stand-in does), then hands each call to
an instance that has none in hand, over a connection on which it proves the same caller: the
keys a function's callers prove themselves with are in the function's key file. A function
root's HTTP ingress is served here too: each request goes to an idle instance's own ingress.

Why call by call and not connection by connection: callers keep their connections (each of a
caller's threads keeps one per target), so handing connections over — passing their
descriptors, or letting the instances share one listening socket — would pin every caller to the
instance it first reached, and an instance started under load would get nothing from callers
already connected; ``SO_REUSEPORT`` does not spread a Unix socket's connections at all. The
price is one hop per call (``benchmarks/bench_functions.py`` measures it).

Scaling: a call that finds every instance busy waits here, and while calls wait, instances
start, up to N; an instance idle for ``IDLE_SECONDS`` is stopped, down to one, which stays warm.
A call that comes back into the function on a chain an instance is running (A -> fn -> A -> fn)
goes to that instance, whose gate lets it in: anywhere else it could wait for itself. An instance
is stopped only while it has no call, so scaling down loses none. One that dies inside a call
closes its caller's connection: the caller re-sends as it does to any service that crashed.

Instances are interchangeable because a function's globals are frozen (``service._frozen``); an
instance that answered ``FrozenStateError`` no longer holds its build's state and is replaced.
Each instance journals in a file of its own, ``STATE/<id>/instances/<n>.cbor``: a copy of the
function's build journal followed by the calls that instance ran. A new instance gets a new file,
so an instance restores in constant time however long the function has run.
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import os
import shutil
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol

import cbor2

from ..errors import CallTimeoutError, DeploymentError, DistdevError
from ..membrane import error_info
from ..service import listed
from . import _wire as wire
from ._client import CALL_TIMEOUT, Connection, Network
from ._keys import ServiceKeys
from ._server import Gatekeeper, listen
from ._wire import Call, Refused, Reply

__all__ = ["IDLE_SECONDS", "POOL_FILE", "Instance", "Launcher", "Dispatcher", "InstanceNetwork",
           "status_writer", "read_status"]

IDLE_SECONDS = float(os.environ.get("DISTDEV_FUNCTION_IDLE", "30"))
"""Seconds an instance beyond the first may stay without a call before it is stopped."""
START_FAILURES = 3
"""Instances in a row that exit before serving: the function cannot start (its dispatcher
gives up, and its engine restarts it as any service that cannot start)."""
_FROZEN = "FrozenStateError"
POOL_FILE = "instances.json"
"""``STATE/<id>/instances.json``: a function's instances as its dispatcher last saw them."""


class InstanceNetwork(Network):
    """The transport of one instance of a function. A call-out made outside any incoming call
    with an id (an HTTP request to its ingress, a client's call) is numbered by its seq in the
    instance's journal, which its sibling instances number alike: such an id is prefixed with
    the instance's number, so that a callee never takes two instances' calls for one call
    re-sent (``_restore.DedupTable``)."""

    def __init__(self, *args: Any, instance: int) -> None:
        super().__init__(*args)
        self.instance = instance

    def send(self, caller: Any, target: str, export: str, args: list[Any],
             kwargs: dict[str, Any], call_seq: int | str | None) -> Any:
        if isinstance(call_seq, int):
            call_seq = f"instance-{self.instance}#{call_seq}"
        return super().send(caller, target, export, args, kwargs, call_seq)


def status_writer(folder: Path, max_instances: int) -> Callable[[list[Instance]], None]:
    """A dispatcher's ``on_change`` that keeps ``folder/instances.json`` up to date."""
    path = folder / POOL_FILE

    def save(instances: list[Instance]) -> None:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"dispatcher": os.getpid(), "max_instances": max_instances,
                                   "instances": [i.row() for i in instances]}, indent=2))
        os.replace(tmp, path)

    return save


def read_status(folder: Path) -> dict[str, Any] | None:
    """What ``folder/instances.json`` says, or None if there is none."""
    try:
        report: dict[str, Any] = json.loads((folder / POOL_FILE).read_text())
    except (OSError, ValueError):
        return None
    return report


class _AsCaller:
    """Credentials that prove ``caller`` to the function's instances: the key the function
    holds for calls from it (or its outside key, for a client)."""

    remedy = ""

    def __init__(self, keys: ServiceKeys, caller: str) -> None:
        self.key = keys.key_from(caller) if keys.is_service(caller) else keys.outside

    def key_to(self, callee: str) -> bytes | None:
        return self.key


@dataclasses.dataclass(eq=False)
class Instance:
    """One instance of the function, as its dispatcher sees it."""

    number: int
    journal: Path
    address: str = ""
    """Where it serves calls, once it is ready."""
    ingress: tuple[str, int] | None = None
    """Where its own ingress serves, once it is ready (a function root's)."""
    state: str = "starting"
    """``starting``, ``ready`` (given calls), ``retiring`` (given none; stopped once it has
    none in hand) or ``stopping``."""
    pid: int | None = None
    handle: Any = None
    """Its engine's: a process, an actor."""
    calls: int = 0
    busy: int = 0
    chains: Counter[str] = dataclasses.field(default_factory=Counter)
    idle_since: float = dataclasses.field(default_factory=time.monotonic)
    connections: dict[str, list[Connection]] = dataclasses.field(default_factory=dict)
    http_connections: list[http.client.HTTPConnection] = dataclasses.field(default_factory=list)

    def row(self) -> dict[str, Any]:
        return {"instance": self.number, "pid": self.pid, "state": self.state,
                "calls": self.calls, "busy": self.busy, "journal": str(self.journal),
                "address": self.address}


class Launcher(Protocol):
    """How an engine starts and stops a function's instances. ``launch`` returns at once; the
    launcher then calls the dispatcher's ``ready`` once the instance serves, and ``exited``
    when it has ended (for whatever reason)."""

    def launch(self, dispatcher: Dispatcher, instance: Instance) -> None: ...

    def terminate(self, instance: Instance) -> None:
        """Ask it to stop (it has no call in hand); ``exited`` follows."""
        ...

    def wait(self, instances: list[Instance], timeout: float) -> None:
        """Return once ``instances`` (asked to stop) have ended, killing those that outlive
        ``timeout`` seconds."""
        ...


class Dispatcher:
    """The instances of one function, and who gets the next call."""

    def __init__(self, service_id: str, keys: ServiceKeys, max_instances: int, folder: Path,
                 build_journal: Path, launcher: Launcher, log: Callable[[str], None],
                 on_change: Callable[[list[Instance]], None] = lambda _: None) -> None:
        self.service_id = service_id
        self.keys = keys
        self.max_instances = max_instances
        self.folder = folder
        self.build_journal = build_journal
        self.launcher = launcher
        self.log = log
        self.on_change = on_change
        self.instances: list[Instance] = []
        self.waiting = 0
        self.start_failures = 0
        self.failed: str | None = None
        """Why the function cannot start, once instances keep exiting before they serve."""
        self.stopping = threading.Event()
        self.servers: list[Any] = []
        self.on_failure: Callable[[str], None] = lambda _: None
        self._cond = threading.Condition()
        self._numbers = _next_numbers(folder / "instances")

    # -- instances ---------------------------------------------------------------------------

    def start(self, address: str, ingress: tuple[str, int] | None = None,
              on_failure: Callable[[str], None] = lambda _: None) -> None:
        """Start the first instance, then serve at ``address`` (and the ingress at ``(host,
        port)``); ``DeploymentError`` if the function cannot start. ``on_failure`` is told if
        it cannot go on later (instances that keep exiting before they serve)."""
        self.on_failure = on_failure
        with self._cond:
            first = self._spawn()
            while first.state == "starting" and self.failed is None:
                self._cond.wait(0.5)
            if self.failed is not None:
                raise DeploymentError(self.failed)
        self.servers.append(listen(address, self._serve_caller))
        if ingress is not None:
            self.servers.append(_http_front(self, *ingress))
        for server in self.servers:
            threading.Thread(target=server.serve_forever, args=(0.2,), daemon=True,
                             name=f"distdev-dispatch-{self.service_id}").start()
        threading.Thread(target=self._reap, daemon=True, name="distdev-dispatch-reaper").start()

    @property
    def address(self) -> str:
        """Where the dispatcher answers (a TCP address of port 0: the port it got)."""
        server = self.servers[0]
        bound = server.server_address
        return f"tcp:{bound[0]}:{bound[1]}" if isinstance(bound, tuple) else f"unix:{bound}"

    def _spawn(self) -> Instance:
        """Start one more instance (lock held)."""
        number = next(self._numbers)
        journal = self.folder / "instances" / f"{number}.cbor"
        journal.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.build_journal, journal)
        instance = Instance(number, journal)
        self.instances.append(instance)
        self.launcher.launch(self, instance)
        self._changed()
        return instance

    def ready(self, instance: Instance, address: str,
              ingress: tuple[str, int] | None = None) -> None:
        """The launcher's word: ``instance`` serves at ``address`` (its ingress at
        ``ingress``)."""
        with self._cond:
            instance.address, instance.ingress = address, ingress
            if instance.state == "starting":
                instance.state = "ready"
                instance.idle_since = time.monotonic()
            self.start_failures = 0
            self._changed()
            self._cond.notify_all()
        self.log(f"instance {instance.number} ready" +
                 (f" (pid {instance.pid})" if instance.pid else ""))

    def exited(self, instance: Instance, why: str) -> None:
        """The launcher's word: ``instance`` has ended; ``why`` says how."""
        with self._cond:
            was = instance.state
            if instance in self.instances:
                self.instances.remove(instance)
            for connections in instance.connections.values():
                for connection in connections:
                    connection.close()
            stopping = self.stopping.is_set()
            if was == "starting" and not stopping:
                self.start_failures += 1
                if self.start_failures >= START_FAILURES:
                    self.failed = (f"{self.start_failures} instances of {self.service_id} in a "
                                   f"row ended before serving; the last: {why}")
            if was in ("starting", "ready") and not stopping:
                self.log(f"instance {instance.number} ended while {was}: {why}")
                if not self.instances and self.failed is None:
                    self._spawn()  # a function always has one instance warm
            self._changed()
            self._cond.notify_all()
        if self.failed is not None and not stopping:
            self.on_failure(self.failed)

    def _retire(self, instance: Instance) -> None:
        """Give ``instance`` no more calls, and stop it once it has none (lock held)."""
        if instance.state in ("starting", "ready"):
            instance.state = "retiring"
        if instance.busy == 0 and instance.state == "retiring":
            instance.state = "stopping"
            self.launcher.terminate(instance)
        self._changed()

    def _reap(self) -> None:
        """Stop instances beyond the first that have had no call for ``IDLE_SECONDS``."""
        while not self.stopping.wait(min(1.0, IDLE_SECONDS / 4)):
            with self._cond:
                ready = [i for i in self.instances if i.state == "ready"]
                now = time.monotonic()
                for instance in ready[1:]:
                    if instance.busy == 0 and now - instance.idle_since >= IDLE_SECONDS:
                        self.log(f"instance {instance.number} idle for {IDLE_SECONDS:g} s: "
                                 "stopping it")
                        self._retire(instance)
                self._changed()

    def _changed(self) -> None:
        self.on_change(list(self.instances))

    # -- handing out calls -------------------------------------------------------------------

    def acquire(self, chain: str | None, deadline: float | None) -> Instance | None:
        """An instance for a call on ``chain``: the one running that chain, else one with no
        call, waiting (and starting instances) while every one is busy; None if the call's
        ``deadline`` (``time.time()``) passes first."""
        with self._cond:
            if chain is not None:
                for instance in self.instances:
                    if chain in instance.chains and instance.state in ("ready", "retiring"):
                        return self._take(instance, chain)
            while True:
                for instance in self.instances:  # the oldest first: the newest go idle first
                    if instance.state == "ready" and instance.busy == 0:
                        return self._take(instance, chain)
                left = None if deadline is None else deadline - time.time()
                if left is not None and left <= 0:
                    return None
                self.waiting += 1
                try:
                    self._grow()
                    self._cond.wait(1.0 if left is None else min(left, 1.0))
                finally:
                    self.waiting -= 1

    def _grow(self) -> None:
        """Start instances for the calls that wait, up to ``max_instances`` (lock held)."""
        running = [i for i in self.instances if i.state in ("starting", "ready")]
        starting = sum(1 for i in running if i.state == "starting")
        while (self.waiting > starting and len(running) < self.max_instances
               and self.failed is None and not self.stopping.is_set()):
            running.append(self._spawn())
            starting += 1

    def _take(self, instance: Instance, chain: str | None) -> Instance:
        instance.busy += 1
        instance.calls += 1
        if chain is not None:
            instance.chains[chain] += 1
        return instance

    def release(self, instance: Instance, chain: str | None, *, replace: bool = False) -> None:
        """The call ``instance`` had is over; with ``replace``, it left the function's state
        changed (it answered ``FrozenStateError``): it gets no more calls."""
        with self._cond:
            instance.busy -= 1
            if chain is not None:
                instance.chains[chain] -= 1
                if instance.chains[chain] <= 0:
                    del instance.chains[chain]
            instance.idle_since = time.monotonic()
            if replace and instance.state in ("ready", "retiring"):
                self.log(f"instance {instance.number} no longer holds the build's state (a "
                         "call changed its globals): replacing it")
                self._retire(instance)
                if not any(i.state in ("starting", "ready") for i in self.instances):
                    self._spawn()
            elif instance.state == "retiring":
                self._retire(instance)
            self._cond.notify_all()

    # -- the function's address --------------------------------------------------------------

    def _serve_caller(self, sock: socket.socket) -> None:
        gatekeeper = Gatekeeper(self.service_id, self.keys, self.log)
        try:
            caller = gatekeeper.admit(sock)
            if caller is None:
                return
            while True:
                message = wire.receive(sock)
                if not isinstance(message, Call):
                    raise wire.FrameError(f"expected a call, got a {type(message).__name__}")
                if message.caller != caller:
                    raise wire.FrameError(f"a forged caller: a call from {message.caller!r} on "
                                          f"a connection {caller!r} authenticated")
                reply = self._forward(message)
                if reply is None:
                    return  # the instance died inside the call: its caller re-sends it
                wire.send(sock, reply)
        except EOFError:
            pass
        except wire.FrameError as exc:
            self.log(f"closed a connection: {exc}")
            try:
                wire.send(sock, Refused(str(exc)))
            except OSError:
                pass
        except OSError:
            pass

    def _forward(self, call: Call) -> Reply | Refused | None:
        """The instance's answer to ``call``, or None if it died before answering."""
        instance = self.acquire(call.chain, call.deadline)
        if instance is None:
            late = CallTimeoutError(f"the call reached {self.service_id} after its caller's "
                                    "deadline, every instance busy; it did not run",
                                    may_have_run=False)
            return Reply(call.id, False, cbor2.dumps(listed(error_info(late))))
        replace = False
        try:
            connection = self._connection(instance, call.caller)
            try:
                wire.send(connection.sock, call)
                reply = wire.receive(connection.sock)
            except BaseException:
                connection.close()
                raise
            with self._cond:
                instance.connections.setdefault(call.caller, []).append(connection)
            replace = isinstance(reply, Reply) and not reply.ok and _is_frozen(reply.value)
            return reply if isinstance(reply, (Reply, Refused)) else None
        except (OSError, EOFError, wire.FrameError, DistdevError) as exc:
            self.log(f"instance {instance.number} did not answer a call of {call.caller} to "
                     f"{call.export} ({exc}); its caller may re-send it")
            return None
        finally:
            self.release(instance, call.chain, replace=replace)

    def _connection(self, instance: Instance, caller: str) -> Connection:
        with self._cond:
            idle = instance.connections.get(caller)
            if idle:
                return idle.pop()
        return Connection(instance.address, _AsCaller(self.keys, caller), caller, None,
                          service=self.service_id)

    # -- stopping ----------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop answering, then stop every instance (killed after 15 s)."""
        self.stopping.set()
        for server in self.servers:
            server.shutdown()
            server.server_close()
        with self._cond:
            instances = list(self.instances)
            for instance in instances:
                instance.state = "stopping"
                self.launcher.terminate(instance)
        self.launcher.wait(instances, 15.0)
        with self._cond:
            self.instances.clear()
            self._changed()


def _is_frozen(value: bytes) -> bool:
    """Whether a reply's error is ``FrozenStateError``."""
    try:
        error = cbor2.loads(value)
    except Exception:
        return False
    return isinstance(error, list) and len(error) > 1 and error[1] == _FROZEN


def _next_numbers(folder: Path) -> Iterator[int]:
    """Instance numbers after those whose journals are in ``folder``: each its own file."""
    taken = [int(p.stem) for p in folder.glob("*.cbor") if p.stem.isdigit()] \
        if folder.is_dir() else []
    number = max(taken, default=0)
    while True:
        number += 1
        yield number


# -- the HTTP ingress --------------------------------------------------------------------------


def _http_front(dispatcher: Dispatcher, host: str, port: int) -> ThreadingHTTPServer:
    """The function root's ingress: each request answered by an idle instance's own."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            instance = dispatcher.acquire(None, time.time() + CALL_TIMEOUT)
            if instance is not None and instance.ingress is None:  # it serves no ingress
                dispatcher.release(instance, None)
                instance = None
            if instance is None:
                self._answer(504, {"Content-Type": "application/json"}, json.dumps({
                    "error": "CallTimeoutError", "message": (
                        f"every instance of {dispatcher.service_id} stayed busy for "
                        f"{CALL_TIMEOUT:g} s; the request did not run")}).encode())
                return
            status, headers, data = 502, {"Content-Type": "application/json"}, b""
            replace = False
            try:
                status, headers, data = _relay(instance, self.command, self.path, body,
                                               dict(self.headers.items()))
                replace = status == 500 and _json_error(data) == _FROZEN
            except (OSError, http.client.HTTPException) as exc:
                data = json.dumps({"error": "ServiceUnavailableError", "message": (
                    f"instance {instance.number} of {dispatcher.service_id} stopped while "
                    f"answering ({exc}); the request may or may not have run")}).encode()
            finally:
                dispatcher.release(instance, None, replace=replace)
            self._answer(status, headers, data)

        def _answer(self, status: int, headers: dict[str, str], data: bytes) -> None:
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._forward()

        def do_POST(self) -> None:
            self._forward()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    try:
        server = ThreadingHTTPServer((host, port), Handler)
    except OSError as exc:
        raise DeploymentError(f"{dispatcher.service_id} cannot serve its ingress on port "
                              f"{port} ({exc.strerror}); stop what listens there, or pass "
                              "--port N") from None
    server.daemon_threads = True
    return server


def _relay(instance: Instance, method: str, path: str, body: bytes,
           headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    """One request to the instance's own ingress, on a connection kept for the next."""
    assert instance.ingress is not None
    connection = (instance.http_connections.pop() if instance.http_connections
                  else http.client.HTTPConnection(*instance.ingress))
    try:
        connection.request(method, path, body, headers={
            k: v for k, v in headers.items() if k.lower() in ("content-type", "accept")})
        response = connection.getresponse()
        data = response.read()
    except BaseException:
        connection.close()
        raise
    instance.http_connections.append(connection)
    kept = {k: v for k, v in response.getheaders()
            if k.lower() in ("content-type", "retry-after", "allow")}
    return response.status, kept, data


def _json_error(data: bytes) -> str | None:
    try:
        answer = json.loads(data)
    except ValueError:
        return None
    return answer.get("error") if isinstance(answer, dict) else None
