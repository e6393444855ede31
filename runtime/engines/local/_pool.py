"""The local engine's host of a function (``host.function(max_instances=N)``): one address, up
to N processes.

The supervisor starts this process in a function's place (``python -P -m
distdev.engines.local._pool``, the arguments of a service process). It starts the function's
instances — service processes of it (``_host --instance N``), each restored from the function's
build journal and listening on an address of its own — and answers at the function's address
itself: it completes the function's handshake with the function's own keys (as the supervisor's
stand-in does), then hands each call to an instance that has none in hand, over a connection on
which it proves the same caller: the keys a function's callers prove themselves with are in the
function's key file. A function root's HTTP ingress is served here too: each request goes to an
idle instance's own ingress, on a private port.

Why call by call and not connection by connection: callers keep their connections (each of a
caller's threads keeps one per target), so handing connections over — passing their descriptors,
or letting the instances share one listening socket — would pin every caller to the instance
it first reached, and an instance started under load would get nothing from callers already
connected; ``SO_REUSEPORT`` does not spread a Unix socket's connections at all. The price is a
hop through this process per call (``benchmarks/bench_functions.py`` measures it).

Scaling: a call that finds every instance busy waits here, and while calls wait, instances
start, up to N; an instance idle for ``IDLE_SECONDS`` is stopped, down to one. A call that comes
back into the function on a chain an instance is running (A -> fn -> A -> fn) goes to that
instance, whose gate lets it in: anywhere else it could wait for itself. An instance is stopped
only while it has no call, so no call is lost to scaling down. One that dies inside a call closes
its caller's connection: the caller re-sends as it does to any service that crashed.

Instances are interchangeable because a function's globals are frozen (``service._frozen``); an
instance that answered a call with ``FrozenStateError`` no longer holds its build's state and is
replaced. Each instance journals in a file of its own, ``STATE/<id>/instances/<n>.cbor``: a copy
of the function's build journal followed by the calls that instance ran, replayable like any
journal. A new instance gets a new file, so a function restores in constant time however long
it has run. ``STATE/<id>/instances.json`` says which instances run, for ``distdev status``
and for ``distdev down`` (and a later pool), which stop what a pool that died left running.
"""

from __future__ import annotations

import argparse
import dataclasses
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any

import cbor2

from ..._spawn import python_module
from ...build import ServiceSpec
from ...errors import CallTimeoutError, DeploymentError, DistdevError
from ...membrane import error_info
from ...service import listed
from .. import _wire as wire
from .._client import CALL_TIMEOUT, Connection
from .._keys import ServiceKeys, read_key_file
from .._server import Gatekeeper, listen
from .._wire import Call, Refused, Reply
from ._deployment import Deployment, ServiceEntry
from ._host import READY

__all__ = ["IDLE_SECONDS", "POOL_FILE", "Pool", "function_instances", "pool_status",
           "leftover_instances"]

IDLE_SECONDS = float(os.environ.get("DISTDEV_FUNCTION_IDLE", "30"))
"""Seconds an instance beyond the first may stay without a call before it is stopped."""
POOL_FILE = "instances.json"
START_FAILURES = 3
"""Instances in a row that exit before serving: the function cannot start; the pool gives up
(and its supervisor restarts it, as any service that cannot start)."""
_FROZEN = "FrozenStateError"
_INSTANCE_MODULE = b"distdev.engines.local._host"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _instance_address(function_address: str, number: int) -> str:
    """An instance's private address beside its function's: the same kind of socket."""
    if function_address.startswith("unix:"):
        return function_address.removesuffix(".sock") + f".i{number}.sock"
    return f"tcp:127.0.0.1:{_free_port()}"


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
    """One process of the function, as the pool sees it."""

    number: int
    address: str
    http_port: int | None
    journal: Path
    process: subprocess.Popen[str] | None = None
    state: str = "starting"
    """``starting``, ``ready`` (given calls), ``retiring`` (given none; stopped once it has
    none in hand) or ``stopping``."""
    calls: int = 0
    busy: int = 0
    chains: Counter[str] = dataclasses.field(default_factory=Counter)
    idle_since: float = dataclasses.field(default_factory=time.monotonic)
    connections: dict[str, list[Connection]] = dataclasses.field(default_factory=dict)
    http_connections: list[http.client.HTTPConnection] = dataclasses.field(default_factory=list)

    def row(self) -> dict[str, Any]:
        pid = None if self.process is None else self.process.pid
        return {"instance": self.number, "pid": pid, "state": self.state, "calls": self.calls,
                "busy": self.busy, "journal": str(self.journal), "address": self.address}


class Pool:
    """The instances of one function, and who gets the next call."""

    def __init__(self, deployment: Deployment, service_id: str, key_file: Path, *,
                 durable: bool, log: Callable[[str], None]) -> None:
        self.deployment = deployment
        self.service_id = service_id
        self.entry: ServiceEntry = deployment.services[service_id]
        self.max_instances = self.entry.max_instances or 1
        self.key_file = key_file
        self.keys = read_key_file(key_file, service_id)
        self.durable = durable
        self.log = log
        self.folder = Path(deployment.state) / service_id
        self.instances: list[Instance] = []
        self.waiting = 0
        self.start_failures = 0
        self.failed: str | None = None
        self.stopping = threading.Event()
        self._cond = threading.Condition()
        self._numbers = _next_numbers(self.folder / "instances")
        self.servers: list[Any] = []

    # -- instances ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the first instance and serve once it is ready; ``DeploymentError`` if the
        function cannot start."""
        for pid in leftover_instances(Path(self.deployment.state), self.service_id):
            os.kill(pid, signal.SIGKILL)
            self.log(f"stopped instance process {pid}, left by a pool that is gone")
        with self._cond:
            first = self._spawn()
            while first.state == "starting" and self.failed is None:
                self._cond.wait(0.5)
            if self.failed is not None:
                raise DeploymentError(self.failed)
        self.servers.append(listen(self.entry.address, self._serve_caller))
        if self.entry.http is not None:
            self.servers.append(_http_front(self, self.entry.http))
        for server in self.servers:
            threading.Thread(target=server.serve_forever, args=(0.2,), daemon=True,
                             name=f"distdev-pool-{self.service_id}").start()
        threading.Thread(target=self._reap, daemon=True, name="distdev-pool-reaper").start()

    def _spawn(self) -> Instance:
        """Start one more instance (the caller holds the lock)."""
        number = next(self._numbers)
        journal = self.folder / "instances" / f"{number}.cbor"
        journal.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.deployment.journal(self.service_id), journal)
        instance = Instance(number, _instance_address(self.entry.address, number),
                            None if self.entry.http is None else _free_port(), journal)
        command = python_module(
            "distdev.engines.local._host", "--state", self.deployment.state, "--id",
            self.service_id, "--keys", str(self.key_file), "--instance", str(number),
            "--journal", str(journal), "--address", instance.address,
            *(["--http", str(instance.http_port)] if instance.http_port is not None else []),
            *([] if self.durable else ["--no-sync"]))
        instance.process = subprocess.Popen(command, stdout=subprocess.PIPE,
                                            stderr=subprocess.STDOUT, text=True,
                                            stdin=subprocess.DEVNULL)
        self.instances.append(instance)
        threading.Thread(target=self._relay, args=(instance, instance.process.stdout),
                         daemon=True, name=f"distdev-instance-{number}").start()
        self._save()
        return instance

    def _relay(self, instance: Instance, stream: IO[str] | None) -> None:
        """Relay an instance's output, prefixed with its number; note when it is ready and
        when it has exited."""
        assert stream is not None and instance.process is not None
        last = ""
        for line in stream:
            if line.strip() == READY:
                with self._cond:
                    if instance.state == "starting":
                        instance.state = "ready"
                        instance.idle_since = time.monotonic()
                    self.start_failures = 0
                    self._save()
                    self._cond.notify_all()
                self.log(f"instance {instance.number} ready (pid {instance.process.pid})")
                continue
            if line.strip():
                last = line.strip()
            self.log(f"instance {instance.number}: {line.rstrip()}")
        code = instance.process.wait()
        self._exited(instance, code, last)

    def _exited(self, instance: Instance, code: int, last: str) -> None:
        with self._cond:
            was = instance.state
            if instance in self.instances:
                self.instances.remove(instance)
            for connections in instance.connections.values():
                for connection in connections:
                    connection.close()
            if was == "starting" and not self.stopping.is_set():
                self.start_failures += 1
                if self.start_failures >= START_FAILURES:
                    self.failed = (f"{self.start_failures} instances of {self.service_id} in a "
                                   f"row exited before serving; the last said: {last or code}")
            if was in ("starting", "ready") and not self.stopping.is_set():
                self.log(f"instance {instance.number} exited (code {code}) while {was}"
                         + (f": {last}" if last else ""))
                if not self.instances and self.failed is None:
                    self._spawn()  # a function always has one instance warm
            self._save()
            self._cond.notify_all()
        if self.failed is not None and not self.stopping.is_set():
            self.log(f"error: {self.failed}")
            os.kill(os.getpid(), signal.SIGTERM)  # `main` stops, its supervisor restarts it

    def _retire(self, instance: Instance) -> None:
        """Give ``instance`` no more calls, and stop it once it has none (lock held)."""
        if instance.state in ("starting", "ready"):
            instance.state = "retiring"
        if instance.busy == 0 and instance.state == "retiring":
            instance.state = "stopping"
            if instance.process is not None and instance.process.poll() is None:
                instance.process.send_signal(signal.SIGTERM)
        self._save()

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
                self._save()

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
                for instance in self.instances:
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
        """Stop answering, then stop every instance (SIGTERM; SIGKILL after 15 s)."""
        self.stopping.set()
        for server in self.servers:
            server.shutdown()
            server.server_close()
        with self._cond:
            instances = list(self.instances)
            for instance in instances:
                instance.state = "stopping"
                if instance.process is not None and instance.process.poll() is None:
                    instance.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for instance in instances:
            assert instance.process is not None
            try:
                instance.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                instance.process.kill()
                instance.process.wait()
        with self._cond:
            self.instances.clear()
            self._save()

    def _save(self) -> None:
        """Write ``instances.json`` (lock held)."""
        path = self.folder / POOL_FILE
        rows = [instance.row() for instance in self.instances]
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"pool": os.getpid(), "max_instances": self.max_instances,
                                   "instances": rows}, indent=2))
        os.replace(tmp, path)


def _is_frozen(value: bytes) -> bool:
    """Whether a reply's error is ``FrozenStateError``."""
    try:
        error = cbor2.loads(value)
    except Exception:
        return False
    return isinstance(error, list) and len(error) > 1 and error[1] == _FROZEN


def _next_numbers(folder: Path) -> Any:
    """Instance numbers after those whose journals are in ``folder``: each its own file."""
    taken = [int(p.stem) for p in folder.glob("*.cbor") if p.stem.isdigit()] \
        if folder.is_dir() else []
    number = max(taken, default=0)
    while True:
        number += 1
        yield number


# -- the HTTP ingress --------------------------------------------------------------------------


def _http_front(pool: Pool, port: int) -> ThreadingHTTPServer:
    """The function root's ingress: each request answered by an idle instance's own."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            instance = pool.acquire(None, time.time() + CALL_TIMEOUT)
            if instance is None:
                self._answer(504, {"Content-Type": "application/json"}, json.dumps({
                    "error": "CallTimeoutError", "message": (
                        f"every instance of {pool.service_id} stayed busy for "
                        f"{CALL_TIMEOUT:g} s; the request did not run")}).encode())
                return
            status, headers, data = 502, {"Content-Type": "application/json"}, b""
            replace = False
            try:
                connection = (instance.http_connections.pop() if instance.http_connections
                              else http.client.HTTPConnection("127.0.0.1", instance.http_port))
                try:
                    connection.request(self.command, self.path, body, headers={
                        k: v for k, v in self.headers.items()
                        if k.lower() in ("content-type", "accept")})
                    response = connection.getresponse()
                    data = response.read()
                except BaseException:
                    connection.close()
                    raise
                instance.http_connections.append(connection)
                status = response.status
                headers = {k: v for k, v in response.getheaders()
                           if k.lower() in ("content-type", "retry-after", "allow")}
                replace = status == 500 and _FROZEN.encode() in data and \
                    _json_error(data) == _FROZEN
            except (OSError, http.client.HTTPException) as exc:
                data = json.dumps({"error": "ServiceUnavailableError", "message": (
                    f"instance {instance.number} of {pool.service_id} stopped while answering "
                    f"({exc}); the request may or may not have run")}).encode()
            finally:
                pool.release(instance, None, replace=replace)
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
        server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    except OSError as exc:
        raise DeploymentError(f"{pool.service_id} cannot serve its ingress on port {port} "
                              f"({exc.strerror}); stop what listens there, or pass --port N") from None
    server.daemon_threads = True
    return server


def _json_error(data: bytes) -> str | None:
    try:
        answer = json.loads(data)
    except ValueError:
        return None
    return answer.get("error") if isinstance(answer, dict) else None


# -- for status and down -----------------------------------------------------------------------


def function_instances(spec: ServiceSpec) -> int | None:
    """How many instances a service may have if it is a function (None: it is not)."""
    host = spec.host
    return host.instances if host is not None and host.kind == "function" else None


def pool_status(state: Path, service_id: str) -> dict[str, Any] | None:
    """What ``instances.json`` says of a function's instances, each with whether it is alive."""
    try:
        report: dict[str, Any] = json.loads((Path(state) / service_id / POOL_FILE).read_text())
    except (OSError, ValueError):
        return None
    for row in report.get("instances", []):
        row["alive"] = _runs_instance(row.get("pid"))
    return report


def leftover_instances(state: Path, service_id: str) -> list[int]:
    """Pids of instance processes a pool of ``service_id`` started that still run."""
    report = pool_status(state, service_id)
    if report is None:
        return []
    return [row["pid"] for row in report.get("instances", []) if row["alive"]]


def _runs_instance(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        state = Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0]
    except (OSError, IndexError):
        return False
    return _INSTANCE_MODULE in cmdline and b"--instance" in cmdline and state != "Z"


# -- the process -------------------------------------------------------------------------------


_output = threading.Lock()


def _log(message: str) -> None:
    """One whole line (the supervisor reads them; ``print`` from two threads can mix two)."""
    with _output:
        sys.stdout.write(message + "\n")
        sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m distdev.engines.local._pool")
    parser.add_argument("--state", type=Path, required=True)
    parser.add_argument("--id", required=True)
    parser.add_argument("--keys", type=Path, required=True, help="the function's key file")
    parser.add_argument("--no-sync", action="store_true", help="journal without fdatasync")
    args = parser.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        pool = Pool(Deployment.load(args.state), args.id, args.keys, durable=not args.no_sync,
                    log=_log)
        try:
            pool.start()
        except BaseException:
            pool.stop()
            raise
    except DistdevError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 1
    _log(READY)
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    pool.stop()
    return 1 if pool.failed is not None else 0


if __name__ == "__main__":
    raise SystemExit(main())
