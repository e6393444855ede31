"""Queues and topics with real processes: each message's effect happens once across ``kill -9``
of the consumer, the producer and the supervisor; a consumer that keeps failing dead-letters the
message, shown and retried by ``distdev queue``; the same application in one process.

The application (``tests/apps/messaging``): ``app.produce(start, count)`` makes the producer push
and publish each number; the worker consumes the queue, ``audit`` and ``mailer`` subscribe to
the topic; each keeps the numbers it got, in order, which the tests read with calls and compare
with a replay of each journal."""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from support import run_distdev
from support.engines import (
    LocalDeployment,
    build,
    deployment_processes,
    replayed_states,
    running,
    wait_until,
)

from distdev.build import App
from distdev.engines import AuthenticationError, Connection
from distdev.engines import _wire as wire
from distdev.engines.local import Deployment

APP = Path(__file__).resolve().parent / "apps" / "messaging"
CONSUMERS = ["app/worker", "app/audit", "app/mailer"]


def built(tmp_path: Path) -> Path:
    source = tmp_path / "messaging"
    shutil.copytree(APP, source)
    out = tmp_path / "out"
    build(source / "app.py", out)
    return out


class Producing(threading.Thread):
    """Calls ``app.produce`` for ``batches`` batches of ``size`` numbers, each with its own
    caller seq, re-sending the very same call after any transport error until it is answered
    (as a client that must not produce twice does)."""

    def __init__(self, deployment: LocalDeployment, batches: int, size: int) -> None:
        super().__init__(daemon=True)
        self.deployment = deployment
        self.batches, self.size = batches, size
        self.done = 0
        self.error: str | None = None

    def run(self) -> None:
        connection: Connection | None = None
        try:
            for batch in range(self.batches):
                deadline = time.monotonic() + 120
                while True:
                    try:
                        if connection is None:
                            connection = self.deployment.connect("app", "test-producer", 60.0)
                        connection.call("test-producer", f"produce-{batch}", batch + 1,
                                        "produce", [batch * self.size + 1, self.size], {})
                        break
                    except (OSError, EOFError, wire.FrameError) as exc:
                        if isinstance(exc, AuthenticationError) or time.monotonic() > deadline:
                            raise
                        if connection is not None:
                            connection.close()
                            connection = None
                        time.sleep(0.1)
                self.done += 1
        except BaseException as exc:
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            if connection is not None:
                connection.close()


def seen(deployment: LocalDeployment, service_id: str) -> list[int]:
    """What a consumer got so far; [] while it cannot be reached (it is being restarted)."""
    try:
        result: list[int] = deployment.call(service_id, "seen")
        return result
    except (OSError, EOFError, wire.FrameError):
        return []


def kill_9(deployment: LocalDeployment, service_id: str, progress: str, after: int) -> None:
    """Once ``progress`` has got ``after`` messages, ``kill -9`` ``service_id``; return once
    the supervisor's new process of it serves."""
    wait_until(lambda: len(seen(deployment, progress)) >= after, 90,
               f"{after} messages at {progress}")
    deployment.kill_and_wait_for_restart(service_id, timeout=60)


@pytest.mark.slow
def test_a_thousand_messages_each_take_effect_once_across_kill_9(tmp_path: Path) -> None:
    out = built(tmp_path)
    state = tmp_path / "state"
    total, size = 1000, 50
    first = LocalDeployment(out, state)
    second: LocalDeployment | None = None
    try:
        producing = Producing(first, total // size, size)
        producing.start()
        kill_9(first, "app/worker", "app/worker", 100)      # a consumer of the queue
        kill_9(first, "app/producer", "app/audit", 250)     # the producer, mid-batch
        kill_9(first, "app/audit", "app/mailer", 400)       # a subscriber of the topic
        wait_until(lambda: len(seen(first, "app/mailer")) >= 550, 90, "550 messages at mailer")

        # The supervisor, killed: everything it ran is killed by `down` (what a machine
        # restart does), and a new `up` on the same state folder carries on.
        os.kill(Deployment.load(state).supervisor or 0, signal.SIGKILL)
        result = run_distdev("down", "--state", state, timeout=60)
        assert result.returncode == 0, result.stderr
        assert deployment_processes(state) == []
        second = LocalDeployment(out, state)
        producing.deployment = second
        wait_until(lambda: not producing.is_alive(), 180, "every batch produced")
        assert producing.error is None and producing.done == total // size, producing.error

        expected = list(range(1, total + 1))
        for service_id in CONSUMERS:
            wait_until(lambda s=service_id: len(seen(second, s)) >= total, 120,  # type: ignore[misc]
                       f"{total} messages at {service_id}")
        live = {service_id: seen(second, service_id) for service_id in CONSUMERS}
        assert sorted(live["app/worker"]) == expected  # each handled once, none lost
        assert live["app/audit"] == expected  # every subscriber: each once, in publish order
        assert live["app/mailer"] == expected

        report = json.loads(run_distdev("queue", "ls", "--state", state, "--json").stdout)
        counts = {(r["id"], g): c for r in report for g, c in r["groups"].items()}
        assert counts[("app/jobs", "consumers")]["delivered"] == total
        assert all(c["dead"] == 0 and c["pending"] == 0 for c in counts.values()), counts
        assert [r["messages"] for r in report] == [total, total]  # no push made twice
    finally:
        left = (second or first).stop()
        assert left == [], f"processes left after `distdev down`: {left}"
    # The journals replay, in other processes, to what the consumers held live.
    replayed = replayed_states(state, [*CONSUMERS, "app/producer"])
    assert sorted(replayed["app/worker"]["handled"]) == expected
    assert replayed["app/audit"]["received"] == replayed["app/mailer"]["received"] == expected
    assert replayed["app/producer"]["produced"] == expected


@pytest.mark.slow
def test_a_failing_consumer_dead_letters_and_queue_retry_delivers_again(tmp_path: Path) -> None:
    out = built(tmp_path)
    with running(out, tmp_path / "state") as deployment:
        state = deployment.state
        poison = deployment.call("app", "push_poison", 7)
        deployment.call("app", "produce", 1, 3)
        wait_until(lambda: len(seen(deployment, "app/worker")) == 3, 60, "3 messages handled")

        def letters() -> list[dict[str, Any]]:
            result = run_distdev("queue", "ls", "app/jobs", "--state", state, "--json")
            assert result.returncode == 0, result.stderr
            found: list[dict[str, Any]] = json.loads(result.stdout)[0]["dead_letters"]
            return found

        wait_until(lambda: deployment.call("app/jobs", "dead_letters"), 60,
                   "the poison message dead-lettered")
        [letter] = letters()
        assert (letter["id"], letter["attempts"], letter["message"]) == (
            poison, 3, {"n": 7, "poison": True})
        assert letter["error"] == "ValueError: cannot handle 7"
        shown = run_distdev("queue", "ls", "--state", state)
        assert "ValueError: cannot handle 7" in shown.stdout and "app/jobs" in shown.stdout
        assert "dead-lettered" in deployment.log("app/jobs")
        status = run_distdev("status", "--state", state)
        assert "cannot handle 7" in status.stdout and "consumers" in status.stdout
        report = json.loads(run_distdev("status", "--state", state, "--json").stdout)
        [jobs] = [r for r in report["messaging"] if r["id"] == "app/jobs"]
        assert jobs["groups"]["consumers"]["dead"] == 1

        deployment.call("app/worker", "cure")
        retried = run_distdev("queue", "retry", "app/jobs", str(poison), "--state", state)
        assert retried.returncode == 0, retried.stderr
        wait_until(lambda: 7 in seen(deployment, "app/worker"), 60, "the retried message")
        assert letters() == []
        again = run_distdev("queue", "retry", "app/jobs", "--state", state)
        assert again.returncode == 1 and "has no dead letter" in again.stderr
        unknown = run_distdev("queue", "ls", "app/nothing", "--state", state)
        assert unknown.returncode == 1 and "app/jobs, app/events" in unknown.stderr

        # The operator reaches the queue like any service: JSON in, the message delivered.
        pushed = run_distdev("call", "app/jobs.push", '{"n": 99}', "--state", state)
        assert pushed.returncode == 0, pushed.stderr
        wait_until(lambda: 99 in seen(deployment, "app/worker"), 60, "the pushed message")
        stats = json.loads(run_distdev("call", "app/jobs.stats", "--state", state,
                                       "--json").stdout)
        assert stats["kind"] == "queue" and stats["subscribers"] == ["app/worker.handle"]


def test_in_one_process_messages_are_delivered_on_threads_and_replay(tmp_path: Path) -> None:
    source = tmp_path / "messaging"
    shutil.copytree(APP, source)
    app = App(source / "app.py", out=tmp_path / "out", state=tmp_path / "state").start()
    try:
        app.service("app").produce(1, 20)
        expected = list(range(1, 21))
        for service_id, field in (("app/worker", "handled"), ("app/audit", "received"),
                                  ("app/mailer", "received")):
            wait_until(lambda s=service_id, f=field: len(app.state(s)[f]) == 20, 30,  # type: ignore[misc]
                       f"20 messages at {service_id}")
            assert sorted(app.state(service_id)[field]) == expected
        assert app.state("app/audit")["received"] == expected
    finally:
        app.close()
    replayed = replayed_states(tmp_path / "state", ["app/worker", "app/audit"])
    assert sorted(replayed["app/worker"]["handled"]) == expected
    assert replayed["app/audit"]["received"] == expected


def test_consume_refuses_what_is_not_an_export_and_runtime_wiring(tmp_path: Path) -> None:
    source = tmp_path / "bad"
    source.mkdir()
    (source / "worker.py").write_text("def handle(message: int) -> None:\n    pass\n")
    (source / "app.py").write_text(
        "from distdev import import_service, resources\n"
        "jobs = resources.queue('jobs')\n"
        "worker = import_service('./worker.py')\n"
        "jobs.consume(worker)\n")
    result = run_distdev("build", source / "app.py", "-o", tmp_path / "out")
    assert result.returncode == 1
    assert "takes an export of a service (like mailer.send), not a ServiceProxy" in result.stderr

    (source / "app.py").write_text(
        "from distdev import import_service, resources\n"
        "jobs = resources.queue('jobs', max_attempts=0)\n")
    result = run_distdev("build", source / "app.py", "-o", tmp_path / "out")
    assert result.returncode == 1 and "max_attempts" in result.stderr

    (source / "app.py").write_text(
        "from distdev import import_service, resources\n"
        "jobs = resources.queue('jobs')\n"
        "worker = import_service('./worker.py')\n"
        "def late() -> None:\n"
        "    jobs.consume(worker.handle)\n")
    app = App(source / "app.py", out=tmp_path / "out2", state=tmp_path / "state").start()
    try:
        with pytest.raises(Exception, match="consumers are wired at build time"):
            app.service("app").late()
    finally:
        app.close()


def test_an_export_crosses_a_membrane_by_reference_and_replays(tmp_path: Path) -> None:
    """What ``jobs.consume(mailer.send)`` rests on: an export of a proxy handed to another
    service is held there as that export, callable, and journaled like any proxy."""
    source = tmp_path / "callback"
    source.mkdir()
    (source / "app.py").write_text(
        "from distdev import import_service\n"
        "a = import_service('./a.py')\n"
        "b = import_service('./b.py')\n"
        "a.register(b.double)\n"
        "def go(x: int) -> int:\n"
        "    return a.fire(x)\n")
    (source / "a.py").write_text(
        "from typing import Any\n"
        "handler: Any = None\n"
        "def register(h: Any) -> None:\n"
        "    global handler\n"
        "    handler = h\n"
        "def fire(x: int) -> int:\n"
        "    return handler(x)\n")
    (source / "b.py").write_text("def double(x: int) -> int:\n    return 2 * x\n")
    app = App(source / "app.py", out=tmp_path / "out", state=tmp_path / "state").start()
    try:
        assert app.service("app").go(21) == 42
        assert app.state("app/a")["handler"] == {"$service": "app/b", "$export": "double"}
    finally:
        app.close()
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert {s["id"]: s["proxies"] for s in manifest["services"]}["app/a"] == ["app/b"]
    replayed = replayed_states(tmp_path / "state", ["app/a"])
    assert replayed["app/a"]["handler"] == {"$service": "app/b", "$export": "double"}

