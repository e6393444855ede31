"""Deployments of the local engine for tests: started with the real console script (`distdev
up --detach`), called over the real transport, stopped with `distdev down`, and checked for
processes left behind; the counting and shop applications; clients that stream calls."""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
import re
import shutil
import signal
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

from distdev.engines import AuthenticationError, Connection
from distdev.engines import _wire as wire
from distdev.engines.local import Deployment

from . import run_distdev

TESTS = Path(__file__).resolve().parent.parent


COUNTING = TESTS / "apps" / "counting"


PAUSING = TESTS / "apps" / "pausing"


UUID_TEXT = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def deployment_processes(state: Path) -> list[int]:
    """Pids of live processes whose command line names distdev and this state folder."""
    marker = str(state.resolve()).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if b"distdev" in cmdline and marker in cmdline:
            found.append(int(entry.name))
    return found


def wait_until(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def _every_thread_stopped(pid: int) -> bool:
    """Whether every thread of process ``pid`` is stopped by a signal (``T`` in its ``stat``)."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except FileNotFoundError:  # a thread that ended meanwhile
            continue
        if stat.rpartition(") ")[2][:1] != "T":
            return False
    return True


@contextlib.contextmanager
def stopped(pid: int, timeout: float = 10.0) -> Iterator[None]:
    """Process ``pid`` stopped (``SIGSTOP``) until the block ends (``SIGCONT``).

    ``kill`` returns before the process stops: one of its threads must take the signal first,
    and on a busy machine the one the kernel picked (the main thread, asleep) can wait
    milliseconds for a CPU while the others go on serving calls. A test that called the
    service at once saw it answer, or start the call and stop inside it; so the block starts
    only once every thread is stopped."""
    os.kill(pid, signal.SIGSTOP)
    try:
        wait_until(lambda: _every_thread_stopped(pid), timeout, f"process {pid} to stop")
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def build(app: Path, out: Path) -> None:
    result = run_distdev("build", app, "-o", out)
    assert result.returncode == 0, result.stdout + result.stderr


class LocalDeployment:
    """A deployment in ``state``, started in the background as a user would."""

    def __init__(self, out: Path, state: Path, *options: str,
                 env: dict[str, str] | None = None) -> None:
        self.out = out
        self.state = state.resolve()
        result = run_distdev("up", out, "--state", self.state, "--detach", *options, env=env)
        if result.returncode != 0:
            self.stop()
            raise AssertionError(f"distdev up failed:\n{result.stdout}{result.stderr}\n"
                                 + self.logs())
        self.info = Deployment.load(self.state)
        self.secret = self.info.secret()

    def address(self, service_id: str) -> str:
        return self.info.services[service_id].address

    def connect(self, service_id: str, caller: str = "test-client",
                timeout: float = 60.0) -> Connection:
        """An authenticated connection."""
        return Connection(self.address(service_id), self.secret, caller, timeout)

    def call(self, service_id: str, export: str, *args: Any) -> Any:
        connection = self.connect(service_id)
        try:
            return connection.call("test-client", f"test-{time.monotonic_ns()}", None, export,
                                   list(args), {})
        finally:
            connection.close()

    def status(self) -> dict[str, dict[str, Any]]:
        result = run_distdev("status", "--state", self.state, "--json")
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        assert report["running"] is True, report
        return {row["id"]: row for row in report["services"]}

    def live_pid(self, service_id: str, timeout: float = 30) -> int:
        """The service's current pid, from the deployment file (cheaper than `status`); while
        its supervisor is between two processes of it, the next one's."""
        pid: int = wait_until(lambda: Deployment.load(self.state).services[service_id].pid,
                              timeout, f"a process of {service_id}")
        return pid

    def journal(self, service_id: str) -> Path:
        return self.state / service_id / "journal.cbor"

    READY_LINE = "\nready\n"
    """What the supervisor writes in a service's log when the service listens."""

    def kill_and_wait_for_restart(self, service_id: str, timeout: float = 30) -> None:
        """``kill -9`` the service's process; return once the supervisor's new one says it
        is ready (its socket is listening), not merely once it has a new pid."""
        starts = self.log(service_id).count(self.READY_LINE)
        killed = self.live_pid(service_id)
        os.kill(killed, signal.SIGKILL)
        wait_until(lambda: Deployment.load(self.state).services[service_id].pid
                   not in (None, killed)
                   and self.log(service_id).count(self.READY_LINE) > starts,
                   timeout, f"{service_id} to restart after kill -9")

    def log(self, service_id: str) -> str:
        path = self.state / "logs" / (service_id.replace("/", "__") + ".log")
        return path.read_text() if path.exists() else ""

    def logs(self) -> str:
        folder = self.state / "logs"
        if not folder.is_dir():
            return ""
        return "".join(f"--- {p.name}\n{p.read_text()}" for p in sorted(folder.glob("*.log")))

    def wait_for_log(self, service_id: str, text: str, timeout: float = 10.0) -> str:
        return wait_until(lambda: text in self.log(service_id) and self.log(service_id),
                          timeout, f"{text!r} in the log of {service_id}")

    def stop(self) -> list[int]:
        """`distdev down`; returns the pids of any process of this deployment still alive
        afterwards (after killing them, so that a failure leaves nothing running)."""
        if (self.state / "deployment.json").exists():
            run_distdev("down", "--state", self.state, timeout=60)
        left = deployment_processes(self.state)
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return left


@contextlib.contextmanager
def running(out: Path, state: Path, *options: str,
            env: dict[str, str] | None = None) -> Iterator[LocalDeployment]:
    """A deployment started with ``distdev up --detach`` (with ``env`` added to its
    environment), stopped and checked for processes left behind on the way out."""
    deployment = LocalDeployment(out, state, *options, env=env)
    try:
        yield deployment
    finally:
        left = deployment.stop()
    assert left == [], f"processes left after `distdev down`: {left}"
    assert socket_files(state) == [], "socket files left after `distdev down`"


def socket_files(state: Path) -> list[Path]:
    """The Unix socket files of the deployment in ``state`` that exist (its services', and
    their function instances')."""
    try:
        services = Deployment.load(state).services
    except Exception:  # never started: no deployment file
        return []
    found = []
    for entry in services.values():
        if entry.address.startswith("unix:"):
            path = Path(entry.address.removeprefix("unix:"))
            found += [f for f in [path, *path.parent.glob(f"{path.stem}.i*.sock")] if f.exists()]
    return found


def counting_build(folder: Path) -> tuple[Path, Path]:
    """Copy tests/apps/counting into ``folder``, build it; returns (source, out)."""
    source = folder / "counting"
    shutil.copytree(COUNTING, source)
    out = folder / "out"
    build(source / "app.py", out)
    return source, out


def tally_seen_by_replay(journal: Path) -> list[int]:
    """The tally's `seen`, restored by `distdev replay --json` in another process."""
    result = run_distdev("replay", journal, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["service"] == "app/tally"
    seen: list[int] = report["state"]["seen"]
    return seen


class StreamClient(threading.Thread):
    """Calls app.add(base + i) for i = 1, 2, ... with its own caller id and caller_seq = i,
    re-sending the very same call after a connection error until it is acknowledged."""

    def __init__(self, deployment: LocalDeployment, caller: str, base: int) -> None:
        super().__init__(daemon=True)
        self.deployment = deployment
        self.caller = caller
        self.base = base
        self.acknowledged: list[int] = []
        self.answers: list[int] = []
        self.resends = 0
        self.error: str | None = None
        self.finish = threading.Event()

    def run(self) -> None:
        connection: Connection | None = None
        seq = 0
        try:
            while not self.finish.is_set():
                seq += 1
                n = self.base + seq
                delay, deadline = 0.02, time.monotonic() + 60
                while True:
                    try:
                        if connection is None:
                            connection = self.deployment.connect("app", self.caller, 30.0)
                        answer = connection.call(self.caller, f"{self.caller}-{seq}", seq, "add",
                                                 [n], {})
                        break
                    except (OSError, EOFError, wire.FrameError) as exc:
                        if isinstance(exc, AuthenticationError) or time.monotonic() > deadline:
                            raise
                        if connection is not None:
                            connection.close()
                            connection = None
                        self.resends += 1
                        time.sleep(delay)
                        delay = min(delay * 2, 0.5)
                self.acknowledged.append(n)
                self.answers.append(answer)
        except BaseException as exc:
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            if connection is not None:
                connection.close()

    def wait_for(self, calls: int, timeout: float = 30) -> None:
        target = len(self.acknowledged) + calls
        wait_until(lambda: len(self.acknowledged) >= target or self.error, timeout,
                   f"{calls} more acknowledged calls")
        assert self.error is None, self.error


def http_post(url: str, export: str, body: dict[str, Any]) -> tuple[int, Any]:
    request = urllib.request.Request(f"{url}/{export}", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


class ShopDeployment:
    """The shop under `distdev up`; every request sent is kept, to be sent to `distdev dev`."""

    def __init__(self, deployment: LocalDeployment, source: Path) -> None:
        self.deployment = deployment
        self.source = source
        log = deployment.wait_for_log("app", "serving the ingress on http://")
        found = re.search(r"serving the ingress on (http://127\.0\.0\.1:\d+)", log)
        assert found, log
        self.url = found.group(1)
        self.history: list[tuple[str, dict[str, Any], tuple[int, Any]]] = []

    def post(self, export: str, body: dict[str, Any]) -> tuple[int, Any]:
        answer = http_post(self.url, export, body)
        self.history.append((export, body, answer))
        return answer


SCRIPT: list[tuple[str, dict[str, Any]]] = [
    ("list_products", {}),
    ("place_order", {"user": "bob", "item": "lamp"}),
    ("place_order", {"user": "ann", "item": "pen", "quantity": 3}),
    ("revenue", {}),
    ("place_order", {"user": "cy", "item": "piano"}),  # fails in the catalog: 500
    ("place_order", {"user": "cy", "item": "pen", "quantity": "many"}),  # refused: 422
    ("place_order", {"user": "cy", "item": "mug", "quantity": 0}),  # fails in orders: 500
    ("revenue", {}),
]


class Normalizer:
    """Makes two runs' states comparable: uuids become ``<uuid-K>``, numbered by first
    appearance over all services (so an order's receipt still names its billing charge);
    the values under ``TIMES`` (time.time() floats, datetime.now() ISO strings) become
    ``<time>``. Everything else must be equal as it is (billing's ``signing_key`` is a proxy
    to its secret resource: the same in both)."""

    TIMES: ClassVar[frozenset[str]] = frozenset({"built_at", "placed_at", "at"})

    def __init__(self) -> None:
        self.uuids: dict[str, str] = {}

    def text(self, value: str) -> str:
        return UUID_TEXT.sub(
            lambda m: self.uuids.setdefault(m.group(0), f"<uuid-{len(self.uuids) + 1}>"), value)

    def __call__(self, value: Any, key: str | None = None) -> Any:
        if key in self.TIMES:
            assert isinstance(value, (float, str)), (key, value)
            return "<time>"
        if isinstance(value, dict):
            return {self.text(k): self(v, k) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self(v) for v in value]
        if isinstance(value, str):
            return self.text(value)
        return value


def replayed_states(state: Path, service_ids: list[str]) -> dict[str, Any]:
    """Each service's state, by `distdev replay --json` of its state journal (in parallel)."""

    def replay(service_id: str) -> Any:
        result = run_distdev("replay", state / service_id / "journal.cbor", "--json")
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        assert report["service"] == service_id
        return report["state"]

    with concurrent.futures.ThreadPoolExecutor(len(service_ids)) as pool:
        return dict(zip(service_ids, pool.map(replay, service_ids)))
