"""A function (``host.function(max_instances=4)``) on the Ray engine: an actor of its dispatcher
at the function's address, and up to four instance actors, started as 16 clients' calls queue
and stopped when idle; answers correct; a call that changes its globals fails and its instance
is replaced; `distdev down --engine ray` leaves no instance behind. The application is
tests/apps/functions, deployed on the session's Ray instance (tests/ray/conftest.py)."""

from __future__ import annotations

import concurrent.futures
import json
import os
import shutil
import threading
from pathlib import Path
from typing import Any

from support import run_distdev
from support.engines import TESTS, build, http_post, wait_until

from distdev.engines import Connection
from distdev.engines.ray._layout import ActorInfo, AddressBook, RayDeployment

FUNCTIONS = TESTS / "apps" / "functions"
QUOTES = "app/quotes"


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return False


class _Deployed:
    def __init__(self, out: Path, state: Path, address: str, *options: str,
                 function: str = QUOTES, max_instances: int = 4) -> None:
        self.state = state.resolve()
        self.function, self.max_instances = function, max_instances
        result = run_distdev("deploy", out, "--engine", "ray", "--address", address, "--state",
                             self.state, *options, env={"DISTDEV_FUNCTION_IDLE": "1"},
                             timeout=300)
        assert result.returncode == 0, result.stdout + result.stderr
        self.deployment = RayDeployment.load(self.state)
        self.pids: set[int] = set()

    def instances(self) -> list[dict[str, Any]]:
        result = run_distdev("status", "--engine", "ray", "--state", self.state, "--json")
        assert result.returncode == 0, result.stderr
        row = next(r for r in json.loads(result.stdout)["services"] if r["id"] == self.function)
        assert row["hosting"] == "function" and row["max_instances"] == self.max_instances, row
        ready = [i for i in row["instances"] if i["state"] == "ready"]
        self.pids.update(i["pid"] for i in ready if i["pid"])
        return ready

    def connect(self, caller: str) -> Connection:
        address = AddressBook(self.state, self.deployment.services)[QUOTES]
        return Connection(address, self.deployment.secret(), caller, 60)

    def call(self, export: str, *args: Any) -> Any:
        connection = self.connect("test-client")
        try:
            return connection.call("test-client", f"test-{os.urandom(8).hex()}", None, export,
                                   list(args), {})
        finally:
            connection.close()

    def down(self) -> None:
        result = run_distdev("down", "--engine", "ray", "--state", self.state)
        assert result.returncode == 0, result.stdout + result.stderr


def test_ray_function_runs_up_to_four_instance_actors(ray_address: str, tmp_path: Path) -> None:
    build(FUNCTIONS / "app.py", tmp_path / "out")
    app = _Deployed(tmp_path / "out", tmp_path / "state", ray_address)
    try:
        assert len(app.instances()) == 1
        done, errors, answers = threading.Event(), [], [0]

        def client(i: int) -> None:
            connection = app.connect(f"client-{i}")
            try:
                k = 0
                while not done.is_set():
                    k += 1
                    answer = connection.call(f"client-{i}", f"client-{i}-{k}", k,
                                             "slow_price", ["pen", k, 0.02], {})
                    if answer != 150 * k:
                        errors.append(answer)
                    answers[0] += 1
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
            finally:
                connection.close()

        threads = [threading.Thread(target=client, args=(i,)) for i in range(16)]
        for thread in threads:
            thread.start()
        try:
            wait_until(lambda: (len(rows := app.instances()) == 4
                                and all(r["calls"] > 0 for r in rows)) or errors, 180,
                       "four instance actors serving 16 clients")
        finally:
            done.set()
            for thread in threads:
                thread.join(60)
        assert errors == [] and answers[0] > 0
        wait_until(lambda: len(app.instances()) == 1, 90, "the idle instance actors to stop")
        failed = run_distdev("call", "--engine", "ray", "--state", app.state,
                             f"{QUOTES}.remember", '"book"')
        assert failed.returncode == 1 and "FrozenStateError" in failed.stderr, failed.stderr
        wait_until(lambda: len(app.instances()) == 1, 90, "a fresh instance in its place")
        assert app.call("price", "book", 3) == 3600
        assert [app.call("sell", "lamp") for _ in range(2)] == [1, 2]
    finally:
        app.down()
    wait_until(lambda: not any(_alive(p) for p in app.pids), 60, "the instance actors to exit")


def test_ray_function_root_serves_its_ingress_from_instance_actors(
        ray_address: str, tmp_path: Path) -> None:
    shutil.copytree(TESTS / "apps" / "function_root", tmp_path / "src")
    build(tmp_path / "src" / "app.py", tmp_path / "out")
    app = _Deployed(tmp_path / "out", tmp_path / "state", ray_address, "--port", "0",
                    function="app", max_instances=3)
    try:
        url = ActorInfo.load(app.state, "app").http  # type: ignore[union-attr]
        assert url is not None
        assert http_post(url, "greet", {"name": "ann"}) == (200, "hello, ann")
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            names = [f"c{i}" for i in range(24)]
            answers = list(pool.map(
                lambda name: http_post(url, "greet", {"name": name, "wait": 0.1}), names))
        assert answers == [(200, f"hello, {name}") for name in names]
        # the requests waited: instance actors started (each journals in a file of its own)
        assert len(list((app.state / "app" / "instances").glob("*.cbor"))) >= 2
        status, body = http_post(url, "remember", {"name": "ann"})
        assert status == 500 and body["error"] == "FrozenStateError", body
        assert http_post(url, "greet", {"name": "bo"}) == (200, "hello, bo")
        assert app.instances()  # (their pids: none may outlive `down`)
    finally:
        app.down()
    wait_until(lambda: not any(_alive(p) for p in app.pids), 60, "the instance actors to exit")
