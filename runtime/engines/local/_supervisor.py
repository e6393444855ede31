"""The local engine's supervisor: one process per service on this machine.

``up`` prepares the state folder (each service's state journal starts as a copy of its build
journal, and its key file is derived from the build), chooses addresses, starts every service
process with the path of its own key file, relays their output prefixed with the service id
(and into ``STATE/logs/<id>.log``), and restarts any that dies: it replays its whole journal
and resumes. ``down`` stops a deployment, whatever state its services are in, and leaves no
process behind.

A service that exits is restarted at once; one that exits again soon after is restarted after
a delay that doubles each time (``BACKOFF_FIRST`` to ``BACKOFF_MAX``), and one that fails to
start ``CRASH_LOOP_AFTER`` times in a row with the same error is in a crash loop: still
retried at the longest delay, and reported as such. While a service has no process serving,
its supervisor answers at its address (``_standin``), so its callers learn why at once.
"""

from __future__ import annotations

import collections
import errno
import hashlib
import json
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

from ..._spawn import python_module
from ...build import read_manifest
from ...errors import DeploymentError, DistdevError
from .._keys import read_key_file
from .._state import ingress_port, seed_state
from ._deployment import Deployment, ServiceEntry, says_ready
from ._pool import function_instances, leftover_instances
from ._resources import resource_entries, stop_postgres_servers
from ._standin import StandIn

_UNIX_PATH_MAX = 100
START_TIMEOUT = 120.0
_TAIL_LINES = 40  # what a service said last, to name why it did not start
BACKOFF_FIRST = 0.25
"""Seconds before restarting a service that exited again soon after its last start."""
BACKOFF_MAX = float(os.environ.get("DISTDEV_RESTART_BACKOFF_MAX", "8"))
STABLE_SECONDS = 10.0
"""A service that served this long before it exited is restarted at once, as a first exit."""
CRASH_LOOP_AFTER = 3


class _Restarts:
    """One service's restart history: when to start it next, and how its starts failed."""

    def __init__(self) -> None:
        self.quick_exits = 0
        """Exits in a row, each soon after its start."""
        self.same_failures = 0
        """Starts in a row that failed before serving, with the same error."""
        self.ready_at: float | None = None
        self.started_at = time.monotonic()
        self.next_start: float | None = None
        self.standin: StandIn | None = None

    def exited(self, error: str, previous: str | None) -> float:
        """Count an exit; the delay before the next start."""
        now = time.monotonic()
        if self.ready_at is not None and now - self.ready_at >= STABLE_SECONDS:
            self.quick_exits = 0
        self.quick_exits += 1
        if self.ready_at is None:  # it failed to start
            self.same_failures = self.same_failures + 1 if error == previous else 1
        else:
            self.same_failures = 0
        self.ready_at = None
        if self.quick_exits <= 1:
            return 0.0
        return float(min(BACKOFF_FIRST * 2 ** (self.quick_exits - 2), BACKOFF_MAX))

    @property
    def crash_looping(self) -> bool:
        return self.same_failures >= CRASH_LOOP_AFTER


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _addresses(ids: list[str], state: Path, transport: str) -> dict[str, str]:
    if transport == "tcp":
        return {sid: f"tcp:127.0.0.1:{_free_port()}" for sid in ids}
    folder = state / "sockets"
    if len(str(folder)) + 12 > _UNIX_PATH_MAX:  # socket paths are limited to ~108 bytes
        digest = hashlib.sha256(str(state).encode()).hexdigest()[:16]
        folder = Path(tempfile.gettempdir()) / f"distdev-{os.getuid()}" / digest
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    return {sid: f"unix:{folder / f'{i}.sock'}" for i, sid in enumerate(ids)}


def check_port_free(port: int, owner: str) -> None:
    """Refuse at once an ingress port that something else listens on (the root's process
    would only find out after restoring its journal)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the ingress binds
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            raise DeploymentError(
                f"port {port}, where {owner} serves its ingress, is already in use on 127.0.0.1; "
                "stop what listens there, or pass --port N (--port 0: any free port)"
            ) from None


def refuse_if_running(state: Path) -> None:
    try:
        running = Deployment.load(state)
    except DistdevError:
        return
    if pid_alive(running.supervisor) and _cmdline_has(running.supervisor, b"distdev"):
        raise DistdevError(
            f"a deployment is already running in {state} (supervisor pid {running.supervisor}); "
            "stop it with `distdev down` or pass another --state"
        )


def prepare(out: Path, state: Path, transport: str, http: int | None,
            postgres: dict[str, str] | None = None, durable: bool = True) -> Deployment:
    """Write the deployment file and seed each service's state journal from the build.
    ``postgres``: resource id -> the DSN of a server of the user's own (``--postgres``)."""
    out, state = out.resolve(), state.resolve()
    manifest = read_manifest(out)
    refuse_if_running(state)
    seed_state(out, state, manifest)
    addresses = _addresses([s.id for s in manifest.services] +
                           [r.id for r in manifest.resources], state, transport)
    port = ingress_port(manifest, http)
    if port == 0:
        port = _free_port()  # any free port, recorded for `status`
    if port is not None:
        check_port_free(port, manifest.root)
    services = {s.id: ServiceEntry(s.id, addresses[s.id], http=port if s.id == manifest.root
                                   else None, max_instances=function_instances(s))
                for s in manifest.services}
    # A resource is supervised like a service: a process of its own (``_resources``).
    services.update({r.id: ServiceEntry(r.id, addresses[r.id]) for r in manifest.resources})
    deployment = Deployment(
        out=str(out), state=str(state), secret_file=str((out / manifest.secret).resolve()),
        hash_seed=manifest.hash_seed, root=manifest.root, services=services,
        exports=manifest.exports(), supervisor=os.getpid(), durable=durable,
        resources=resource_entries(manifest, postgres or {}),
    )
    deployment.save()
    return deployment


class Supervisor:
    def __init__(self, deployment: Deployment, echo: Callable[[str], None],
                 durable: bool = True) -> None:
        self.deployment = deployment
        self.echo = echo
        self.durable = durable
        self.processes: dict[str, subprocess.Popen[str]] = {}
        self.ready: dict[str, threading.Event] = {}
        self.tails: dict[str, collections.deque[str]] = {}
        self.relays: dict[str, threading.Thread] = {}
        self.restarts: dict[str, _Restarts] = {}
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._news = threading.Event()  # a service became ready, or its output ended

    def stop_soon(self) -> None:
        """Ask ``start_all`` and ``watch`` to give up (a signal handler may call this)."""
        self.stopping.set()
        self._news.set()

    def start_all(self) -> None:
        """Start every service; return once all are ready. If one exits first (it could not
        be restored, its port was taken), stop the others and raise ``DeploymentError`` with
        what it said: a deployment with a service missing would only hang its callers."""
        for service_id in self.deployment.services:
            self._start(service_id)
        deadline = time.monotonic() + START_TIMEOUT
        waiting = set(self.deployment.services)
        while waiting:
            self._news.clear()
            if self.stopping.is_set():
                self.stop_all()
                raise DeploymentError(
                    f"stopped before {', '.join(sorted(waiting))} was ready (`distdev down`)")
            for service_id in sorted(waiting):
                if self.ready[service_id].is_set():
                    waiting.discard(service_id)
                elif self.processes[service_id].poll() is not None:
                    self.relays[service_id].join(5)  # the last lines it wrote
                    why = self.why_not_started(service_id)
                    self.stop_all()
                    raise DeploymentError(f"{service_id} could not start: {why} (its log: "
                                          f"{self._log_path(service_id)})")
            if waiting and not self._news.wait(min(0.5, max(0.0, deadline - time.monotonic()))) \
                    and time.monotonic() >= deadline:
                self.stop_all()
                names = ", ".join(sorted(waiting))
                raise DeploymentError(f"{names} did not start within {START_TIMEOUT:.0f} s; "
                                      f"see {Path(self.deployment.state) / 'logs'}")
        self.deployment.ready = True
        self._save()

    def why_not_started(self, service_id: str) -> str:
        """Why a service process exited: its ``error:`` line, else the last line of a
        traceback, else its exit code or signal."""
        lines = [line.strip() for line in self.tails[service_id] if line.strip()]
        for line in reversed(lines):
            if line.startswith("error: "):
                return line.removeprefix("error: ")
        if any(line.startswith("Traceback") for line in lines):
            return lines[-1]
        code = self.processes[service_id].poll()
        how = (f"it was killed by {signal.Signals(-code).name}" if code is not None and code < 0
               else f"it exited with code {code}")
        if self.ready[service_id].is_set():
            return how
        return f"{how} before it was ready" + (f" (it said: {lines[-1]})" if lines else "")

    def _start(self, service_id: str) -> None:
        env = dict(os.environ)
        if self.deployment.hash_seed is not None:
            env["PYTHONHASHSEED"] = self.deployment.hash_seed
        host = "_host" if self.deployment.services[service_id].max_instances is None else "_pool"
        command = python_module(f"distdev.engines.local.{host}", "--state", self.deployment.state,
                                "--id", service_id,
                                "--keys", str(self.deployment.key_file(service_id)))
        if not self.durable:
            command.append("--no-sync")
        process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)
        ready = self.ready[service_id] = threading.Event()
        self.tails[service_id] = collections.deque(maxlen=_TAIL_LINES)
        self.restarts.setdefault(service_id, _Restarts()).started_at = time.monotonic()
        with self._lock:
            self.processes[service_id] = process
            self.deployment.services[service_id].pid = process.pid
        self._save()
        relay = self.relays[service_id] = threading.Thread(
            target=self._relay, args=(service_id, process.stdout, ready), daemon=True)
        relay.start()

    def _log_path(self, service_id: str) -> Path:
        return Path(self.deployment.state) / "logs" / (service_id.replace("/", "__") + ".log")

    def _relay(self, service_id: str, stream: IO[str] | None, ready: threading.Event) -> None:
        assert stream is not None
        tail = self.tails[service_id]
        try:
            with open(self._log_path(service_id), "a") as log:
                def keep(line: str) -> None:
                    tail.append(line)
                    log.write(line)
                    log.flush()
                    self.echo(f"[{service_id}] {line.rstrip()}")

                for line in stream:
                    announced, line = says_ready(line)
                    if not announced:
                        keep(line)
                        continue
                    if line:
                        keep(line)  # what the service's code printed before it
                    self._became_ready(service_id)
                    ready.set()
                    self._news.set()
                    keep("ready\n")
        finally:
            self._news.set()

    def _save(self) -> None:
        with self._lock:
            self.deployment.save()

    def _became_ready(self, service_id: str) -> None:
        self.restarts[service_id].ready_at = time.monotonic()
        self.restarts[service_id].same_failures = 0
        with self._lock:
            self.deployment.services[service_id].state = "ready"
        self._save()

    def watch(self) -> None:
        """Restart any service process that dies, until ``stop_all``: at once the first time,
        after a growing delay when it keeps exiting; answer for it meanwhile."""
        while not self.stopping.wait(0.1):
            for service_id, process in list(self.processes.items()):
                restarts = self.restarts[service_id]
                if self.stopping.is_set():
                    return
                if restarts.next_start is not None:
                    if time.monotonic() >= restarts.next_start:
                        self._restart(service_id)
                elif process.poll() is not None:
                    self._exited(service_id)

    def _exited(self, service_id: str) -> None:
        """A service's process has exited: note why, say so, schedule its next start."""
        self.relays[service_id].join(5)  # the last lines it wrote
        entry, restarts = self.deployment.services[service_id], self.restarts[service_id]
        error = self.why_not_started(service_id)
        delay = restarts.exited(error, entry.last_error)
        with self._lock:
            entry.last_error = error
            entry.state = "crash-loop" if restarts.crash_looping else "restarting"
            entry.pid = None
        self._save()
        when = "now" if not delay else f"in {delay:g} s"
        if restarts.crash_looping:
            self.echo(f"[{service_id}] is in a crash loop: it failed to start "
                      f"{restarts.same_failures} times in a row ({error}); retrying {when}")
        else:
            self.echo(f"[{service_id}] exited ({error}); restarting {when} (restart "
                      f"{entry.restarts + 1}), it replays its journal")
        restarts.next_start = time.monotonic() + delay
        if delay:
            restarts.standin = self._stand_in(service_id)

    def _restart(self, service_id: str) -> None:
        restarts = self.restarts[service_id]
        restarts.next_start = None
        if restarts.standin is not None:
            restarts.standin.close()
            restarts.standin = None
        self.deployment.services[service_id].restarts += 1
        self._start(service_id)

    def _stand_in(self, service_id: str) -> StandIn | None:
        """Answer at the service's address while it waits to be restarted."""
        entry = self.deployment.services[service_id]

        def reason() -> tuple[str, bool]:
            if entry.state == "crash-loop":
                return (f"{service_id} is in a crash loop: it failed to start "
                        f"{self.restarts[service_id].same_failures} times in a row, the last "
                        f"with: {entry.last_error} (its log: {self._log_path(service_id)})",
                        True)
            return (f"{service_id} is restarting (its last process exited: "
                    f"{entry.last_error})", False)

        try:
            keys = read_key_file(self.deployment.key_file(service_id), service_id)
            return StandIn(service_id, entry.address, keys, reason,
                           lambda line: self.echo(f"[{service_id}] {line}"), http_port=entry.http)
        except (OSError, DistdevError) as exc:  # its callers then wait out their timeouts
            self.echo(f"[{service_id}] cannot answer for it while it is down ({exc})")
            return None

    def stop_all(self) -> None:
        self.stopping.set()
        for restarts in self.restarts.values():
            if restarts.standin is not None:
                restarts.standin.close()
                restarts.standin = None
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for process in self.processes.values():
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for entry in self.deployment.services.values():
            entry.pid = None
            entry.state = "stopped"
        _remove_sockets(self.deployment)
        self.deployment.supervisor = None
        self.deployment.ready = False
        self._save()


def _remove_sockets(deployment: Deployment) -> None:
    """The Unix socket files the deployment's services listened on (``_addresses``, and a
    function's instances' beside its own): nothing listens there once it is down."""
    for entry in deployment.services.values():
        if entry.address.startswith("unix:"):
            path = Path(entry.address.removeprefix("unix:"))
            for socket_file in [path, *path.parent.glob(f"{path.stem}.i*.sock")]:
                socket_file.unlink(missing_ok=True)


def run_foreground(out: Path, state: Path, transport: str, http: int | None,
                   echo: Callable[[str], None], durable: bool = True,
                   postgres: dict[str, str] | None = None) -> None:
    """``distdev up`` without --detach: start, supervise until SIGINT/SIGTERM, stop."""
    deployment = prepare(out, state, transport, http, postgres=postgres, durable=durable)
    supervisor = Supervisor(deployment, echo, durable)
    stop = threading.Event()

    def on_sigterm(*_: object) -> None:  # `distdev down`, in whatever state the services are
        stop.set()
        supervisor.stop_soon()

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        supervisor.start_all()
        echo(f"deployment up: {len(deployment.services)} services (state in {state})")
        watcher = threading.Thread(target=supervisor.watch, daemon=True)
        watcher.start()
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        supervisor.stop_all()
        echo("deployment down")


def start_detached(argv: list[str], state: Path) -> Deployment:
    """Run the supervisor in the background (its own session, its output in
    ``STATE/logs/supervisor.log``, none of this process's streams); return once every service
    is ready. If the supervisor gives up first, raise ``DeploymentError`` with its reason."""
    refuse_if_running(state)
    state.mkdir(parents=True, exist_ok=True)
    (state / "logs").mkdir(exist_ok=True)
    log_path = state / "logs" / "supervisor.log"
    with open(log_path, "a") as log:
        said_from = log.tell()
        process = subprocess.Popen(python_module("distdev.cli", *argv),
                                   stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + START_TIMEOUT + 10
    while time.monotonic() < deadline:
        code = process.poll()
        if code is not None:
            raise DeploymentError(_supervisor_said(log_path, said_from)
                                  or f"the supervisor exited with code {code}; see {log_path}")
        try:
            deployment = Deployment.load(state)
            if deployment.ready and deployment.supervisor == process.pid:
                return deployment
        except (DistdevError, json.JSONDecodeError, TypeError):
            pass
        time.sleep(0.05)
    process.terminate()
    raise DeploymentError(f"the deployment did not start within {START_TIMEOUT + 10:.0f} s; "
                          f"see {state / 'logs'}")


def _supervisor_said(log_path: Path, offset: int) -> str:
    """The reason a detached supervisor gave for stopping: its error message (the CLI prints
    ``error (Kind): message``), without the kind."""
    with open(log_path, errors="replace") as log:
        log.seek(offset)
        lines = [line.strip() for line in log if line.strip()]
    for line in reversed(lines):
        if line.startswith("error"):
            return line.partition("): ")[2] or line
    return ""


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie has exited
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return True


def _cmdline_has(pid: int | None, text: bytes) -> bool:
    """Whether process ``pid`` runs a command line containing ``text`` (not a reused pid)."""
    try:
        return text in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def down(state: Path, echo: Callable[[str], None]) -> int:
    """Stop the deployment in ``state``; return how many processes were stopped."""
    deployment = Deployment.load(state)
    stopped = 0
    if pid_alive(deployment.supervisor):
        os.kill(deployment.supervisor, signal.SIGTERM)  # type: ignore[arg-type]
        deadline = time.monotonic() + 30
        while pid_alive(deployment.supervisor) and time.monotonic() < deadline:
            time.sleep(0.1)
        stopped += 1
        deployment = Deployment.load(state)
    for entry in deployment.services.values():  # whatever a dead supervisor left behind
        if pid_alive(entry.pid) and (_cmdline_has(entry.pid, b"distdev.engines.local._host")
                                     or _cmdline_has(entry.pid, b"distdev.engines.local._pool")):
            os.kill(entry.pid, signal.SIGKILL)  # type: ignore[arg-type]
            stopped += 1
            echo(f"killed {entry.id} (pid {entry.pid}), left by a supervisor that is gone")
        for pid in leftover_instances(state, entry.id):  # and by a function's pool
            os.kill(pid, signal.SIGKILL)
            stopped += 1
            echo(f"killed an instance of {entry.id} (pid {pid}), left by a pool that is gone")
        entry.pid = None
        entry.state = "stopped"
    stop_postgres_servers(deployment)
    _remove_sockets(deployment)  # a supervisor that was killed left them
    deployment.supervisor = None
    deployment.ready = False
    deployment.save()
    return stopped
