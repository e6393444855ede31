"""Faults under `distdev up` that used to leave a deployment stuck: a callee stopped past the
call timeout, an argument too large for a frame, a service that cannot be restored. Each ends
in a deployment whose every journal still restores, that answers again, and whose code saw
each failure as an outcome its journal holds.

Real processes throughout: `distdev up --detach`, calls over the real transport, SIGSTOP and
SIGKILL of service processes, `distdev down`, `distdev replay` in another process.
"""

from __future__ import annotations

import json
import os
import random
import signal
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import run_distdev, write_files
from support.engines import (
    LocalDeployment,
    build,
    deployment_processes,
    http_post,
    running,
    stopped,
    wait_until,
)

from distdev import read_journal

pytestmark = pytest.mark.slow  # each test stops, kills or waits out services: `make test` runs them

TIMEOUT = 2.0  # DISTDEV_CALL_TIMEOUT of these deployments

APP = {
    "app.py": """
        from distdev import (CallTimeoutError, MembraneError, ServiceUnavailableError,
                             import_service)

        worker = import_service("./worker.py")
        outcomes: list[str] = []

        def ping(n: int) -> str:
            try:
                answer = worker.pong(n)
            except CallTimeoutError as exc:
                outcomes.append(f"timeout {n} may_have_run={exc.may_have_run}")
                return f"timeout: {exc}"
            except ServiceUnavailableError as exc:
                outcomes.append(f"unavailable {n}")
                return f"unavailable: {exc}"
            outcomes.append(answer)
            return answer

        def send(size: int) -> str:
            try:
                return f"took {worker.take(b'x' * size)}"
            except MembraneError as exc:
                outcomes.append(f"refused {size}")
                return f"refused: {exc}"

        def fetch(size: int) -> str:
            try:
                return f"got {len(worker.make(size))}"
            except MembraneError as exc:
                outcomes.append(f"too large {size}")
                return f"refused: {exc}"

        def history() -> list[str]:
            return list(outcomes)
    """,
    "worker.py": """
        seen: list[int] = []

        def pong(n: int) -> str:
            seen.append(n)
            return f"pong {n}"

        def take(data: bytes) -> int:
            return len(data)

        def make(size: int) -> bytes:
            return b"y" * size

        def snapshot() -> list[int]:
            return list(seen)
    """,
}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("faults")
    source = write_files(folder / "src", APP)
    out = folder / "out"
    build(source / "app.py", out)
    return out


ENV = {"DISTDEV_CALL_TIMEOUT": str(TIMEOUT), "DISTDEV_RESTART_BACKOFF_MAX": "1"}


@pytest.fixture
def deployment(built: Path, tmp_path: Path) -> Iterator[LocalDeployment]:
    with running(built, tmp_path / "state", env=ENV) as deployment:
        yield deployment


def replays(journal: Path) -> dict[str, object]:
    """The state `distdev replay --json` restores from ``journal`` in another process."""
    result = run_distdev("replay", journal, "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    state: dict[str, object] = json.loads(result.stdout)["state"]
    return state


def restart_all(deployment: LocalDeployment) -> LocalDeployment:
    """`distdev down`, then `distdev up` on the same state: every service restores from its
    journal (a journal that cannot be replayed fails the `up`)."""
    assert deployment.stop() == []
    return LocalDeployment(deployment.out, deployment.state, env=ENV)


def test_a_callee_stopped_past_the_timeout_is_an_outcome_its_caller_replays(
    deployment: LocalDeployment,
) -> None:
    # One connection: its calls run on one thread of app, whose connection to the worker
    # stays open after the first, so the second call reaches the worker's socket.
    connection = deployment.connect("app")
    try:
        assert connection.call("test-client", "chain", None, "ping", [0], {}) == "pong 0"
        with stopped(deployment.live_pid("app/worker")):
            started = time.monotonic()
            answer = connection.call("test-client", "chain", None, "ping", [1], {})
            waited = time.monotonic() - started
    finally:
        connection.close()
    assert answer.startswith("timeout: app/worker.pong did not answer within 2 s"), answer
    assert "it may have run it" in answer, answer
    assert TIMEOUT <= waited < 5 * TIMEOUT, waited  # the setting's 2 s, not a fixed 10
    # The worker read the call only after its caller's deadline: it does not start it.
    deployment.wait_for_log("app/worker", "it arrived")
    assert deployment.call("app/worker", "snapshot") == [0]
    assert deployment.call("app", "ping", 2) == "pong 2"

    restarted = restart_all(deployment)
    try:
        assert restarted.call("app", "history") == [
            "pong 0", "timeout 1 may_have_run=True", "pong 2"]
        assert restarted.call("app", "ping", 3) == "pong 3"
    finally:
        assert restarted.stop() == []
    assert replays(restarted.journal("app"))["outcomes"] == [
        "pong 0", "timeout 1 may_have_run=True", "pong 2", "pong 3"]


def test_a_callee_that_never_got_the_call_is_reported_as_not_having_run_it(
    deployment: LocalDeployment,
) -> None:
    with stopped(deployment.live_pid("app/worker")):  # before the first call: no connection yet
        answer = deployment.call("app", "ping", 1)
    assert "it never received the call, so it did not run it" in answer, answer
    assert deployment.call("app", "history") == ["timeout 1 may_have_run=False"]
    deployment.kill_and_wait_for_restart("app")
    assert deployment.call("app", "history") == ["timeout 1 may_have_run=False"]


def test_an_argument_too_large_for_a_frame_is_refused_at_once_and_nothing_is_sent(
    deployment: LocalDeployment,
) -> None:
    size = 20 * 1024 * 1024
    answer = deployment.call("app", "send", size)
    assert answer.startswith("refused: the call app/worker.take carries 20,971,5"), answer
    assert "(argument 1: 20,971,5" in answer and "16,777,216-byte limit" in answer, answer
    assert "DISTDEV_MAX_FRAME" in answer
    assert "closed a connection" not in deployment.log("app/worker")  # nothing reached it
    assert deployment.call("app", "send", 1000) == "took 1000"  # the worker is not wedged
    answer = deployment.call("app", "fetch", size)
    assert answer.startswith("refused: the value returned by app/worker.make is 20,971,5")
    assert deployment.call("app", "fetch", 10) == "got 10"

    deployment.kill_and_wait_for_restart("app")
    assert deployment.call("app", "history") == [f"refused {size}", f"too large {size}"]
    restarted = restart_all(deployment)
    try:
        assert restarted.call("app", "send", 5) == "took 5"
    finally:
        assert restarted.stop() == []
    assert replays(restarted.journal("app"))["outcomes"] == [
        f"refused {size}", f"too large {size}"]


def _damage_a_record_in_the_middle(journal: Path) -> tuple[int, int]:
    """Flip a byte inside an early record (the header and the first record stay whole);
    returns (offset, original byte) to put it back."""
    contents = read_journal(journal)
    offset = contents.offsets[len(contents.offsets) // 2] + 3
    data = bytearray(journal.read_bytes())
    original = data[offset]
    data[offset] ^= 0xFF
    with open(journal, "r+b") as f:  # in place: the live process keeps appending to it
        f.seek(offset)
        f.write(bytes([data[offset]]))
    return offset, original


def test_a_service_that_cannot_be_restored_is_a_crash_loop_its_callers_learn_of_at_once(
    deployment: LocalDeployment,
) -> None:
    for n in range(5):
        deployment.call("app", "ping", n)
    journal = deployment.journal("app/worker")
    offset, original = _damage_a_record_in_the_middle(journal)
    os.kill(deployment.live_pid("app/worker"), signal.SIGKILL)

    row = wait_until(lambda: (r := deployment.status()["app/worker"])["state"] == "crash-loop"
                     and r, 30, "app/worker to be reported in a crash loop")
    assert "corrupt" in row["last_error"] or "damaged" in row["last_error"], row
    started = time.monotonic()
    answer = deployment.call("app", "ping", 99)
    assert time.monotonic() - started < TIMEOUT  # told at once, not after the timeout
    assert answer.startswith("unavailable: app/worker is not available: app/worker is in a "
                             "crash loop"), answer
    assert row["last_error"] in answer
    table = run_distdev("status", "--state", deployment.state)
    assert "crash-loop" in table.stdout, table.stdout

    with open(journal, "r+b") as f:  # the operator repairs the journal
        f.seek(offset)
        f.write(bytes([original]))
    wait_until(lambda: deployment.status()["app/worker"]["state"] == "ready", 30,
               "app/worker to be restored once its journal is whole again")
    assert deployment.call("app/worker", "snapshot") == [0, 1, 2, 3, 4]
    assert deployment.call("app", "ping", 5) == "pong 5"
    assert deployment.call("app", "history")[-2:] == ["unavailable 99", "pong 5"]


def test_down_stops_a_deployment_whose_service_is_crash_looping(
    deployment: LocalDeployment,
) -> None:
    deployment.call("app", "ping", 1)
    deployment.call("app", "ping", 2)
    _damage_a_record_in_the_middle(deployment.journal("app/worker"))
    os.kill(deployment.live_pid("app/worker"), signal.SIGKILL)
    wait_until(lambda: deployment.status()["app/worker"]["state"] == "crash-loop", 30,
               "app/worker to be in a crash loop")
    result = run_distdev("down", "--state", deployment.state, timeout=60)
    assert result.returncode == 0, result.stderr
    assert deployment_processes(deployment.state) == []
    report = json.loads(run_distdev("status", "--state", deployment.state, "--json").stdout)
    assert report["running"] is False
    assert {row["state"] for row in report["services"]} == {"stopped"}


SHOP = {
    "app.py": """
        from distdev import host, import_service

        host.process(http=8000, interleave=INTERLEAVE)
        orders = import_service("./orders.py")

        def order(id: str) -> int:
            return orders.place(id)
    """,
    "orders.py": """
        from distdev import host, import_service

        host.process(interleave=INTERLEAVE)
        ledger = import_service("./ledger.py")
        placed: list[str] = []

        def place(id: str) -> int:
            count = ledger.record(id)
            placed.append(id)
            return count
    """,
    "ledger.py": """
        counts: dict[str, int] = {}

        def record(id: str) -> int:
            counts[id] = counts.get(id, 0) + 1
            return counts[id]

        def snapshot() -> dict[str, int]:
            return dict(counts)
    """,
}


def _shop(interleave: bool) -> dict[str, str]:
    return {name: text.replace("INTERLEAVE", str(interleave)) for name, text in SHOP.items()}


class _Client(threading.Thread):
    """POSTs /order with a new id each time until told to finish; an answer 200 is an
    acknowledged order, anything else (an error, a reset, a timeout) is not."""

    def __init__(self, url: str, name: str, finish: threading.Event) -> None:
        super().__init__(daemon=True)
        self.url, self.name_, self.finish = url, name, finish
        self.sent: list[str] = []
        self.acknowledged: list[str] = []

    def run(self) -> None:
        n = 0
        while not self.finish.is_set():
            n += 1
            order_id = f"{self.name_}-{n}"
            self.sent.append(order_id)
            request = urllib.request.Request(
                f"{self.url}/order", data=json.dumps({"id": order_id}).encode(),
                headers={"Content-Type": "application/json"}, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=4 * FAULT_TIMEOUT) as answer:
                    if answer.status == 200:
                        self.acknowledged.append(order_id)
            except (OSError, urllib.error.HTTPError):
                self.finish.wait(0.05)  # the ingress is restarting: pace the next attempt


FAULT_TIMEOUT = 1.5


def _inject_faults(deployment: LocalDeployment, finish: threading.Event,
                   seed: int) -> list[str]:
    """Until ``finish``: stop a service past the call timeout, or kill one, one at a time."""
    chooser = random.Random(seed)
    done = []
    while not finish.wait(chooser.uniform(0.3, 1.0)):
        victim = chooser.choice(["app", "app/orders", "app/orders/ledger"])
        if chooser.random() < 0.5 and victim != "app":
            with stopped(deployment.live_pid(victim)):
                finish.wait(FAULT_TIMEOUT * 1.5)
            done.append(f"SIGSTOP {victim}")
        else:
            deployment.kill_and_wait_for_restart(victim)
            done.append(f"SIGKILL {victim}")
    return done


@pytest.mark.parametrize("interleave", [False, True], ids=["serial", "interleaving"])
def test_sixteen_clients_under_stops_and_kills_lose_no_acknowledged_order_and_count_none_twice(
    tmp_path: Path, interleave: bool,
) -> None:
    """An interleaving root and middle service, killed with calls open, resume those calls
    instead of cutting back past calls they answered (``engines._restore``)."""
    source = write_files(tmp_path / "src", _shop(interleave))
    build(source / "app.py", tmp_path / "out")
    env = {"DISTDEV_CALL_TIMEOUT": str(FAULT_TIMEOUT)}
    deployment = LocalDeployment(tmp_path / "out", tmp_path / "state", "--port", "0", env=env)
    try:
        url = f"http://127.0.0.1:{deployment.status()['app']['http']}"
        finish = threading.Event()
        clients = [_Client(url, f"c{k}", finish) for k in range(16)]
        for client in clients:
            client.start()
        faults: list[str] = []
        injector = threading.Thread(target=lambda: faults.extend(
            _inject_faults(deployment, finish, seed=14)), daemon=True)
        injector.start()
        finish.wait(30)
        finish.set()
        injector.join(60)
        for client in clients:
            client.join(60)
        assert not injector.is_alive() and not any(c.is_alive() for c in clients)
        assert any(f.startswith("SIGSTOP") for f in faults), faults
        assert any(f.startswith("SIGKILL") for f in faults), faults

        wait_until(lambda: {r["state"] for r in deployment.status().values()} == {"ready"}, 30,
                   "every service to be ready after the faults")
        counts: dict[str, int] = deployment.call("app/orders/ledger", "snapshot")
        sent = {order for client in clients for order in client.sent}
        acknowledged = [order for client in clients for order in client.acknowledged]
        assert len(acknowledged) > 50, (len(acknowledged), faults)
        assert [o for o in acknowledged if counts.get(o) != 1] == []  # each ran exactly once
        assert {o: c for o, c in counts.items() if c != 1} == {}  # none counted twice
        assert set(counts) <= sent
    finally:
        assert deployment.stop() == []
    for service in ("app", "app/orders", "app/orders/ledger"):
        replays(deployment.journal(service))  # every journal restores in another process
    assert replays(deployment.journal("app/orders/ledger"))["counts"] == counts
    again = LocalDeployment(deployment.out, deployment.state, "--port", "0", env=env)
    try:
        assert again.call("app/orders/ledger", "snapshot") == counts
    finally:
        assert again.stop() == []


def test_while_the_root_cannot_be_restored_its_ingress_answers_503_with_the_reason(
    tmp_path: Path,
) -> None:
    source = write_files(tmp_path / "src", _shop(interleave=False))
    build(source / "app.py", tmp_path / "out")
    with running(tmp_path / "out", tmp_path / "state", "--port", "0", env=ENV) as deployment:
        url = f"http://127.0.0.1:{deployment.status()['app']['http']}"

        def post(order_id: str) -> tuple[int, Any]:
            return _post(url, order_id)

        for n in range(4):
            assert post(f"o{n}")[0] == 200
        journal = deployment.journal("app")
        offset, original = _damage_a_record_in_the_middle(journal)
        os.kill(deployment.live_pid("app"), signal.SIGKILL)
        wait_until(lambda: deployment.status()["app"]["state"] == "crash-loop", 30,
                   "the root to be in a crash loop")
        def answers_503() -> tuple[int, Any] | None:
            try:
                answer = post("during")
            except OSError:  # between the root's exit and the supervisor taking its port
                return None
            return answer if answer[0] == 503 else None

        status, body = wait_until(answers_503, 30, "the ingress to answer 503")
        assert "app is in a crash loop" in str(body["message"]), body
        with open(journal, "r+b") as f:
            f.seek(offset)
            f.write(bytes([original]))
        wait_until(lambda: deployment.status()["app"]["state"] == "ready", 30,
                   "the root to be restored")
        assert post("after") == (200, 1)
        assert deployment.call("app/orders/ledger", "snapshot") == {
            "o0": 1, "o1": 1, "o2": 1, "o3": 1, "after": 1}



def _post(url: str, order_id: str) -> tuple[int, Any]:
    return http_post(url, "order", {"id": order_id})

def test_the_ingress_answers_504_for_a_stopped_service_and_503_for_a_crash_looping_one(
    tmp_path: Path,
) -> None:
    source = write_files(tmp_path / "src", _shop(interleave=False))
    build(source / "app.py", tmp_path / "out")
    with running(tmp_path / "out", tmp_path / "state", "--port", "0", env=ENV) as deployment:
        url = f"http://127.0.0.1:{deployment.status()['app']['http']}"
        assert _post(url, "a") == (200, 1)
        ledger = deployment.live_pid("app/orders/ledger")
        with stopped(ledger):
            status, body = _post(url, "b")
        assert status == 504 and body["error"] == "CallTimeoutError", body
        assert "app/orders/ledger.record did not answer within" in body["message"], body

        _damage_a_record_in_the_middle(deployment.journal("app/orders/ledger"))
        os.kill(ledger, signal.SIGKILL)
        wait_until(lambda: deployment.status()["app/orders/ledger"]["state"] == "crash-loop",
                   30, "the ledger to be in a crash loop")
        status, body = _post(url, "c")
        assert status == 503 and body["error"] == "ServiceUnavailableError", body
        assert "app/orders/ledger is in a crash loop" in body["message"], body
