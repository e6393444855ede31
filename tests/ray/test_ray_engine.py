"""The Ray engine (`distdev deploy OUT --engine ray`): each service a detached Ray actor,
restored from its journal; calls, status and down through the CLI; re-entrant chains; a killed
actor restored by Ray with no acknowledged call lost or run twice; the shop answering exactly as
under the local engine.

Every deployment is made with the real console script on the session's one Ray instance
(``ray_address``, tests/ray/conftest.py) and stopped with `distdev down --engine ray` in its
fixture's teardown, which then checks that none of its actor processes is left.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import SHOP, run_distdev, write_files
from support.engines import (
    COUNTING,
    SCRIPT,
    Normalizer,
    ShopDeployment,
    StreamClient,
    build,
    http_post,
    running,
    tally_seen_by_replay,
    wait_until,
)

import distdev
from distdev import read_journal
from distdev.engines import Connection
from distdev.engines.ray._layout import PENDING, ActorInfo, AddressBook, RayDeployment
from distdev.journal import CallIn


class RayApp:
    """A build deployed on the session's Ray instance, as a user would deploy it."""

    def __init__(self, out: Path, state: Path, address: str, *options: str) -> None:
        self.out = out
        self.state = state.resolve()
        self.pids: set[int] = set()
        result = run_distdev("deploy", out, "--engine", "ray", "--address", address,
                             "--state", self.state, *options, timeout=300)
        if result.returncode != 0:
            self.stop()
            raise AssertionError(f"distdev deploy failed:\n{result.stdout}{result.stderr}\n"
                                 + self.logs())
        self.deployment = RayDeployment.load(self.state)
        self.secret = self.deployment.secret()
        for sid in self.deployment.services:
            self.live_pid(sid)

    def info(self, service_id: str) -> ActorInfo:
        info = ActorInfo.load(self.state, service_id)
        assert info is not None, f"{service_id} has not published where it listens"
        return info

    def live_pid(self, service_id: str) -> int:
        pid = self.info(service_id).pid
        self.pids.add(pid)
        return pid

    def connect(self, service_id: str, caller: str = "test-client",
                timeout: float = 60.0) -> Connection:
        """An authenticated connection to where the service listens now."""
        address = AddressBook(self.state, self.deployment.services)[service_id]
        if address == PENDING:
            raise ConnectionRefusedError(f"{service_id} is restarting")
        return Connection(address, self.secret, caller, timeout)

    def call(self, service_id: str, export: str, *args: Any) -> Any:
        connection = self.connect(service_id)
        try:
            return connection.call("test-client", f"test-{os.urandom(8).hex()}", None, export,
                                   list(args), {})
        finally:
            connection.close()

    def distdev(self, *args: str) -> Any:
        return run_distdev(*args, "--engine", "ray", "--state", self.state)

    def status(self) -> dict[str, dict[str, Any]]:
        result = self.distdev("status", "--json")
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        assert report["running"] is True and report["engine"] == "ray", report
        return {row["id"]: row for row in report["services"]}

    def journal(self, service_id: str) -> Path:
        return self.state / service_id / "journal.cbor"

    def logs(self) -> str:
        folder = self.state / "logs"
        if not folder.is_dir():
            return ""
        return "".join(f"--- {p.name}\n{p.read_text()}" for p in sorted(folder.glob("*.log")))

    def stop(self) -> list[int]:
        """`distdev down --engine ray`; returns the actor pids still alive afterwards."""
        if (self.state / "ray-deployment.json").exists():
            result = self.distdev("down")
            assert result.returncode == 0, result.stdout + result.stderr
        wait_until(lambda: not any(_alive(p) for p in self.pids), 30, "the actors to exit")
        return [p for p in self.pids if _alive(p)]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return False


@contextlib.contextmanager
def deployed(out: Path, state: Path, address: str, *options: str) -> Iterator[RayApp]:
    app = RayApp(out, state, address, *options)
    try:
        yield app
    finally:
        left = app.stop()
    assert left == [], f"actor processes left after `distdev down --engine ray`: {left}"


# ---------------------------------------------------------------------------------------------
# Without Ray.


def test_engine_ray_without_ray_installed_says_how_to_install_it(tmp_path: Path) -> None:
    # As if Ray were not installed: `import ray` fails and find_spec finds nothing.
    shadow = write_files(tmp_path / "shadow", {
        "sitecustomize.py": "import sys\nsys.modules['ray'] = None\n"})
    env = {"PYTHONPATH": str(shadow)}
    state = ["--engine", "ray", "--state", str(tmp_path / "state")]
    for command in (["deploy", str(tmp_path / "out"), *state], ["down", *state],
                    ["status", *state], ["call", "app.add", "1", *state]):
        result = run_distdev(*command, env=env)
        assert result.returncode == 1, result.stdout + result.stderr
        assert "pip install 'distdev[ray]'" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr, result.stderr
    assert not (tmp_path / "state").exists()


# ---------------------------------------------------------------------------------------------
# The counting application: calls, status, a killed actor.


@pytest.fixture(scope="module")
def counting(ray_address: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RayApp]:
    work = tmp_path_factory.mktemp("counting")
    shutil.copytree(COUNTING, work / "counting")
    build(work / "counting" / "app.py", work / "out")
    with deployed(work / "out", work / "state", ray_address) as app:
        yield app


def test_deploy_runs_each_service_as_its_own_ray_actor_process(counting: RayApp) -> None:
    rows = counting.status()
    assert set(rows) == {"app", "app/tally"}
    assert all(row["alive"] and row["address"].startswith("tcp:127.0.0.1:")
               for row in rows.values()), rows
    pids = {row["pid"] for row in rows.values()}
    assert len(pids) == 2, rows
    for pid in pids:  # Ray's worker processes, named after the actor class
        assert b"ServiceActor" in Path(f"/proc/{pid}/cmdline").read_bytes()
    assert all(row["node"] == rows["app"]["node"] for row in rows.values())


def test_call_through_the_cli_reaches_the_tally_through_the_root(counting: RayApp) -> None:
    before = counting.call("app/tally", "snapshot")
    result = counting.distdev("call", "app.add", "41")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == len(before) + 1
    assert counting.call("app/tally", "snapshot") == [*before, 41]
    tally = read_journal(counting.journal("app/tally")).events
    last = [e for e in tally if type(e) is CallIn and e.export == "record"][-1]
    assert (last.caller, last.args) == ("app", [41])

    refused = counting.distdev("call", "app/nowhere.add", "1")
    assert refused.returncode == 1 and "no service 'app/nowhere'" in refused.stderr


@pytest.mark.parametrize("victim", ["app/tally", "app"])
def test_kill_9_of_an_actor_during_a_stream_of_calls_loses_none_and_runs_none_twice(
    counting: RayApp, victim: str
) -> None:
    other = "app" if victim == "app/tally" else "app/tally"
    rows_before = counting.status()
    other_pid = rows_before[other]["pid"]
    base = 10_000_000 if victim == "app" else 20_000_000
    # The local engine's stream client, re-sending each call until acknowledged; it only needs
    # ``connect``, which RayApp answers with the service's current address.
    stream = StreamClient(counting, f"stream-client/{victim}", base)  # type: ignore[arg-type]
    stream.start()
    try:
        stream.wait_for(20)
        for _ in range(2):  # twice: the second time it is a restored process that dies
            killed = counting.live_pid(victim)
            os.kill(killed, signal.SIGKILL)
            def restarted(killed: int = killed) -> bool:
                return counting.live_pid(victim) != killed

            wait_until(restarted, 60, f"Ray to restart {victim}")
            stream.wait_for(20, timeout=60)
    finally:
        stream.finish.set()
        stream.join(60)
    assert not stream.is_alive()
    assert stream.error is None, stream.error + "\n" + counting.logs()

    expected = [base + i for i in range(1, len(stream.acknowledged) + 1)]
    assert stream.acknowledged == expected
    seen = tally_seen_by_replay(counting.journal("app/tally"))
    assert [n for n in seen if base < n < base + 10_000_000] == expected  # once each, in order
    first = stream.answers[0]
    assert stream.answers == list(range(first, first + len(stream.answers)))
    assert counting.call("app/tally", "snapshot") == seen

    rows = counting.status()
    assert rows[victim]["restarts"] >= rows_before[victim]["restarts"] + 2, rows
    assert rows[victim]["alive"] and rows[other]["alive"], rows
    assert rows[other]["pid"] == other_pid, rows  # only the victim was restarted
    assert "restored from" in (counting.state / "logs" / (victim.replace("/", "__") + ".log")
                               ).read_text()


# ---------------------------------------------------------------------------------------------
# A -> B -> A across actors.

REENTRANT = {
    "app.py": """
        from distdev import import_service

        a = import_service("./a.py")
        b = import_service("./b.py")
        a.connect(b)
        b.connect(a)

        def via_a(n: int) -> int:
            return a.ping_b(n)
    """,
    "a.py": """
        from distdev import ServiceProxy

        _b = None
        calls: list[int] = []

        def connect(b: ServiceProxy) -> None:
            global _b
            _b = b

        def ping_b(n: int) -> int:
            calls.append(n)
            answer = _b.bounce(n)  # B calls back into A on the same chain
            calls.append(-n)
            return answer

        def back(n: int) -> int:
            return n * 10
    """,
    "b.py": """
        from distdev import ServiceProxy

        _a = None

        def connect(a: ServiceProxy) -> None:
            global _a
            _a = a

        def bounce(n: int) -> int:
            return _a.back(n) + 1
    """,
}


def test_reentrant_chains_across_actors_finish_one_at_a_time(
    ray_address: str, tmp_path: Path
) -> None:
    write_files(tmp_path / "app", REENTRANT)
    build(tmp_path / "app" / "app.py", tmp_path / "out")
    with deployed(tmp_path / "out", tmp_path / "state", ray_address) as app:
        numbers = list(range(1, 25))

        def call(n: int) -> int:
            answer: int = app.call("app", "via_a", n)
            return answer

        with concurrent.futures.ThreadPoolExecutor(6) as pool:  # six chains at once
            answers = list(pool.map(call, numbers, timeout=120))
        assert answers == [n * 10 + 1 for n in numbers]
        result = run_distdev("replay", app.journal("app/a"), "--json")
        assert result.returncode == 0, result.stderr
        calls = json.loads(result.stdout)["state"]["calls"]
    # one chain at a time in A: each call's entry and exit are adjacent, re-entry in between
    pairs = [calls[i:i + 2] for i in range(0, len(calls), 2)]
    assert all(second == -first for first, second in pairs), calls
    assert sorted(first for first, _ in pairs) == numbers


# ---------------------------------------------------------------------------------------------
# The shop on Ray against the shop on the local engine.


def test_shop_on_ray_answers_and_ends_in_the_state_of_the_local_engine(
    ray_address: str, tmp_path: Path
) -> None:
    source = tmp_path / "shop"
    shutil.copytree(SHOP, source)
    config = json.loads((source / "config.json").read_text())
    config["promo_rate"] = 0  # random.random() < 0 never holds: prices are deterministic
    (source / "config.json").write_text(json.dumps(config))
    build(source / "app.py", tmp_path / "out")
    requests = [*SCRIPT, ("order_status", {"order_id": "<first order>"})]
    answers: dict[str, list[tuple[int, Any]]] = {}
    with deployed(tmp_path / "out", tmp_path / "ray-state", ray_address, "--port", "0") as app, \
            running(tmp_path / "out", tmp_path / "local-state", "--port", "0") as local:
        urls = {"ray": app.info("app").http, "local": ShopDeployment(local, source).url}
        assert urls["ray"] is not None and urls["ray"].startswith("http://127.0.0.1:")
        for engine, url in urls.items():
            sent = answers[engine] = []
            for export, body in requests:
                if body.get("order_id") == "<first order>":
                    body = {"order_id": next(a["order_id"] for s, a in sent
                                             if s == 200 and "order_id" in a)}
                sent.append(http_post(str(url), export, body))
        status = app.status()
        ids = sorted(sid for sid, row in status.items() if row["kind"] == "service")
        assert ids == ["app", "app/billing", "app/billing/ledger", "app/catalog", "app/orders"]
        assert {sid: row["kind"] for sid, row in status.items() if sid not in ids} == {
            "app/reviews": "sql", "app/billing/signing-key": "secret",
            "app/reviewed": "topic"}  # served by actors too
    statuses = [status for status, _ in answers["ray"]]
    assert 200 in statuses and 422 in statuses and 500 in statuses, answers["ray"]
    assert Normalizer()(answers["ray"]) == Normalizer()(answers["local"])

    states = {engine: {sid: distdev.replay(tmp_path / folder / sid / "journal.cbor").state()
                       for sid in ids}
              for engine, folder in (("ray", "ray-state"), ("local", "local-state"))}
    placed = [a for (export, _), (s, a) in zip(requests, answers["ray"], strict=True)
              if export == "place_order" and s == 200]
    assert len(states["ray"]["app/orders"]["orders"]) == len(placed) > 0
    normalize_ray, normalize_local = Normalizer(), Normalizer()
    assert {sid: normalize_ray(states["ray"][sid]) for sid in ids} == {
        sid: normalize_local(states["local"][sid]) for sid in ids}


def test_deploy_with_the_local_engine_runs_up_in_the_background(tmp_path: Path) -> None:
    shutil.copytree(COUNTING, tmp_path / "counting")
    build(tmp_path / "counting" / "app.py", tmp_path / "out")
    state = tmp_path / "state"
    refused = run_distdev("deploy", tmp_path / "out", "--address", "127.0.0.1:1",
                          "--state", state)
    assert refused.returncode == 1 and "--engine ray" in refused.stderr, refused.stderr
    result = run_distdev("deploy", tmp_path / "out", "--engine", "local", "--state", state)
    try:
        assert result.returncode == 0, result.stdout + result.stderr
        assert "deployment up in the background" in result.stderr + result.stdout
        called = run_distdev("call", "app.add", "3", "--state", state)
        assert (called.returncode, called.stdout.strip()) == (0, "1"), called.stderr
    finally:
        down = run_distdev("down", "--engine", "local", "--state", state)
    assert down.returncode == 0, down.stderr
    assert not json.loads((state / "deployment.json").read_text())["ready"]
