"""Functions (``host.function(max_instances=N)``): a stateless service whose globals freeze after
its build, run under ``distdev up`` as up to N processes behind one address.

In one process (``load_app``): calls that change the frozen globals fail with
``FrozenStateError`` naming the global, build-time calls may set them, and a replay reproduces
the failure. Under ``up``: 16 concurrent clients make the pool start four instances, which stop
again once idle; answers stay correct; a mutating call fails and its instance is replaced; the
instances' call-outs are never taken for one another's; a function root's HTTP ingress spreads
requests over its instances; ``down`` leaves no instance behind. The applications are
tests/apps/functions (a pricing function between a root and a ledger) and
tests/apps/function_root."""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import run_distdev, write_files
from support.engines import TESTS, LocalDeployment, build, http_post, running, wait_until

import distdev
from distdev import FrozenStateError, read_journal
from distdev.build import read_manifest
from distdev.journal import Raise
from distdev.service._frozen import FrozenGlobals
from distdev.testing import load_app

FUNCTIONS = TESTS / "apps" / "functions"
FUNCTION_ROOT = TESTS / "apps" / "function_root"
QUOTES = "app/quotes"


@pytest.fixture
def app(tmp_path: Path) -> Iterator[distdev.App]:
    loaded = load_app(FUNCTIONS / "app.py", out=tmp_path / "build", state=tmp_path / "state")
    try:
        yield loaded
    finally:
        loaded.close()


# -- frozen globals, in one process -----------------------------------------------------------


def test_function_answers_from_the_state_its_build_set(app: distdev.App) -> None:
    assert app.service("app").quote("book", 2) == 2400  # the rates came in at build time
    assert app.service(QUOTES).sell("pen") == 1
    assert app.service(QUOTES).sell("pen") == 2  # state kept where it belongs: the ledger


@pytest.mark.parametrize(("export", "args", "what"), [
    ("remember", ["book"], "changed the global '_recent' in place"),
    ("discount", ["book"], "changed the global '_rates' in place"),
    ("reprice", [{"book": 1}], "bound the global '_rates' to another value"),
])
def test_function_call_that_changes_its_globals_fails_naming_the_global(
        app: distdev.App, export: str, args: list[Any], what: str) -> None:
    quotes = app.service(QUOTES)
    with pytest.raises(FrozenStateError) as failure:
        getattr(quotes, export)(*args)
    assert f"{QUOTES}.{export} {what}" in str(failure.value)
    assert "host.function" in str(failure.value)  # and what to do instead
    # this copy no longer holds its build's state: every later call says so, naming the first
    with pytest.raises(FrozenStateError, match=f"an earlier call, {export}"):
        quotes.price("pen", 1)


def test_function_global_created_or_deleted_by_a_call_fails(tmp_path: Path) -> None:
    source = write_files(tmp_path / "src", {
        "app.py": """
            from distdev import import_service
            fn = import_service("./fn.py")
        """,
        "fn.py": """
            from distdev import host
            host.function()
            LIMIT = 3
            def create() -> None:
                global made
                made = 1
            def delete() -> None:
                global LIMIT
                del LIMIT
        """,
    })
    for export, what in (("create", "created the global 'made'"),
                         ("delete", "deleted the global 'LIMIT'")):
        app = load_app(source / "app.py", out=tmp_path / export / "build",
                       state=tmp_path / export / "state")
        try:
            with pytest.raises(FrozenStateError, match=what):
                getattr(app.service("app/fn"), export)()
        finally:
            app.close()


class _Box:
    def __init__(self) -> None:
        self.size = 1


def test_frozen_globals_fail_only_what_the_digest_sees_change() -> None:
    inner = [1]
    namespace: dict[str, Any] = {"__name__": "fn", "rates": {"a": 1}, "pair": [inner, inner],
                                 "box": _Box(), "limits": (1, 2.5, "x"), "nan": [float("nan")]}
    frozen = FrozenGlobals("app/fn", namespace)
    frozen.check(namespace, "f")  # unchanged (a NaN included: no false alarm)
    namespace["pair"][1] = [1]  # another aliasing, the same digest: no change
    frozen.check(namespace, "f")
    namespace["__doc__"] = "set by nobody's code"  # not state: the digest ignores it too
    frozen.check(namespace, "f")
    namespace["box"].size = 2  # an object's attribute: the digest sees it
    with pytest.raises(FrozenStateError, match="f changed the global 'box' in place"):
        frozen.check(namespace, "f")
    with pytest.raises(FrozenStateError, match="an earlier call, f, changed the global 'box'"):
        frozen.check_intact()


def test_frozen_globals_check_plain_data_by_type_and_order() -> None:
    for change in (lambda ns: ns["rates"].update(a=True),  # 1 -> True: equal, not the same
                   lambda ns: ns["rates"].update(a=1.0),
                   lambda ns: ns["order"].reverse(),
                   lambda ns: ns["order"][0].append(3)):
        namespace: dict[str, Any] = {"rates": {"a": 1}, "order": [[2], [1]]}
        frozen = FrozenGlobals("app/fn", namespace)
        change(namespace)
        with pytest.raises(FrozenStateError):
            frozen.check(namespace, "f")


def test_function_replay_reproduces_a_call_that_changed_its_globals(
        app: distdev.App, tmp_path: Path) -> None:
    quotes = app.service(QUOTES)
    assert quotes.price("lamp", 1) == 4500
    with pytest.raises(FrozenStateError):
        quotes.remember("lamp")
    journal = app.journal(QUOTES)
    app.close()
    raised = [e for e in read_journal(journal).events if isinstance(e, Raise)]
    assert [e.error.type for e in raised] == ["FrozenStateError"]
    restored = distdev.replay(journal)  # exact: the same failure, the same state after it
    assert restored.service.module.__dict__["_recent"] == ["lamp"]


def test_function_declaration_refuses_bad_input(tmp_path: Path) -> None:
    for declaration, error in (("host.function(max_instances=0)", "1 or more, not 0"),
                               ("host.function(max_instances=True)", "not True"),
                               ("host.function(http='80')", "needs a port number"),
                               ("host.process()\nhost.function()", "hosted one way")):
        source = write_files(tmp_path / str(abs(hash(declaration))), {
            "app.py": f"from distdev import host\n{declaration}\n"})
        result = run_distdev("build", source / "app.py", "-o", source / "out")
        assert result.returncode == 1, result.stdout
        assert error in result.stderr, result.stderr


def test_function_hosting_is_in_the_manifest_and_the_graph(tmp_path: Path) -> None:
    build(FUNCTIONS / "app.py", tmp_path / "out")
    spec = read_manifest(tmp_path / "out").service(QUOTES)
    assert spec.host is not None
    assert (spec.host.kind, spec.host.max_instances, spec.host.instances) == ("function", 4, 4)
    graph = run_distdev("graph", tmp_path / "out")
    assert "function max_instances=4" in graph.stdout, graph.stdout + graph.stderr


# -- under distdev up --------------------------------------------------------------------------


def _instances(deployment: LocalDeployment, service_id: str) -> list[dict[str, Any]]:
    row = deployment.status()[service_id]
    assert row["hosting"] == "function" and row["max_instances"] in (3, 4), row
    return [i for i in row["instances"] if i["state"] == "ready"]


class _Clients:
    """``count`` threads, each with a connection of its own, asking for slow quotes until
    ``stop``; every answer is checked."""

    def __init__(self, deployment: LocalDeployment, count: int) -> None:
        self.deployment = deployment
        self.done = threading.Event()
        self.answers = 0
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True)
                        for i in range(count)]
        for thread in self.threads:
            thread.start()

    def _run(self, i: int) -> None:
        connection = self.deployment.connect(QUOTES, f"client-{i}")
        try:
            k = 0
            while not self.done.is_set():
                k += 1
                answer = connection.call(f"client-{i}", f"client-{i}-{k}", k, "slow_price",
                                         ["pen", k, 0.02], {})
                with self._lock:
                    if answer != 150 * k:
                        self.errors.append(f"pen x{k}: {answer}")
                    self.answers += 1
        except Exception as exc:
            self.errors.append(f"client {i}: {type(exc).__name__}: {exc}")
        finally:
            connection.close()

    def stop(self) -> None:
        self.done.set()
        for thread in self.threads:
            thread.join(60)


@pytest.mark.slow
def test_function_scales_to_its_max_under_load_and_back_when_idle(tmp_path: Path) -> None:
    build(FUNCTIONS / "app.py", tmp_path / "out")
    with running(tmp_path / "out", tmp_path / "state",
                 env={"DISTDEV_FUNCTION_IDLE": "1"}) as deployment:
        assert len(_instances(deployment, QUOTES)) == 1  # one warm instance
        clients = _Clients(deployment, 16)
        def four_serving() -> list[dict[str, Any]] | bool:
            rows = _instances(deployment, QUOTES)
            busy = len(rows) == 4 and all(row["calls"] > 0 for row in rows)
            return rows if busy else bool(clients.errors)

        try:
            rows = wait_until(four_serving, 120, "four instances serving 16 clients")
        finally:
            clients.stop()
        assert clients.errors == [] and clients.answers > 0
        assert len({row["journal"] for row in rows}) == 4  # each instance journals on its own
        wait_until(lambda: len(_instances(deployment, QUOTES)) == 1, 60,
                   "the idle instances to stop")
        assert deployment.call("app", "quote", "lamp", 2) == 9000  # the one left still serves
        journals = sorted((deployment.state / QUOTES / "instances").glob("*.cbor"))
    assert len(journals) >= 4
    for journal in journals:  # the history of each instance replays, in another process
        result = run_distdev("replay", journal, "--json")
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["state"]["_recent"] == []


@pytest.mark.slow
def test_function_instance_whose_call_changed_its_globals_is_replaced(tmp_path: Path) -> None:
    build(FUNCTIONS / "app.py", tmp_path / "out")
    with running(tmp_path / "out", tmp_path / "state") as deployment:
        first = _instances(deployment, QUOTES)[0]["instance"]
        result = run_distdev("call", "--state", deployment.state, f"{QUOTES}.remember",
                             '"book"')
        assert result.returncode == 1
        assert "FrozenStateError" in result.stderr
        assert "changed the global '_recent' in place" in result.stderr
        wait_until(lambda: [i["instance"] for i in _instances(deployment, QUOTES)]
                   not in ([], [first]), 60, "a fresh instance in place of the changed one")
        assert deployment.call(QUOTES, "price", "book", 3) == 3600  # the build's state again
        # Calls without an id, from two instances, are two calls to the ledger: the callee
        # never takes one for the other re-sent (their ids carry the instance's number).
        assert [deployment.call(QUOTES, "sell", "book") for _ in range(2)] == [1, 2]


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, killed but not yet reaped, does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return False


class _Sellers:
    """Threads that sell books through the function, each call with an id, re-sending the
    very same call after a connection error until it is acknowledged."""

    def __init__(self, deployment: LocalDeployment, count: int) -> None:
        self.deployment = deployment
        self.done = threading.Event()
        self.acknowledged = 0
        self.resends = 0
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True)
                        for i in range(count)]
        for thread in self.threads:
            thread.start()

    def _run(self, i: int) -> None:
        caller, connection, seq = f"seller-{i}", None, 0
        try:
            while not self.done.is_set():
                seq += 1
                delay, deadline = 0.02, time.monotonic() + 60
                while True:
                    try:
                        if connection is None:
                            connection = self.deployment.connect(QUOTES, caller, 30.0)
                        connection.call(caller, f"{caller}-{seq}", seq, "sell", ["book"], {})
                        break
                    except (OSError, EOFError) as exc:
                        if connection is not None:
                            connection.close()
                            connection = None
                        with self._lock:
                            self.resends += 1
                        if time.monotonic() > deadline:
                            raise AssertionError(f"no answer for 60 s ({exc})") from None
                        time.sleep(delay)  # a client's back-off between re-sends
                        delay = min(delay * 2, 0.5)
                with self._lock:
                    self.acknowledged += 1
        except Exception as exc:
            self.errors.append(f"{caller}: {type(exc).__name__}: {exc}")
        finally:
            if connection is not None:
                connection.close()

    def stop(self) -> None:
        self.done.set()
        for thread in self.threads:
            thread.join(60)


@pytest.mark.slow
def test_function_instance_or_pool_killed_loses_no_call_and_runs_none_twice(
        tmp_path: Path) -> None:
    build(FUNCTIONS / "app.py", tmp_path / "out")
    with running(tmp_path / "out", tmp_path / "state") as deployment:
        sellers = _Sellers(deployment, 6)
        try:
            rows = wait_until(lambda: len(rows := _instances(deployment, QUOTES)) >= 2
                              and rows, 120, "a second instance under six sellers")
            os.kill(rows[-1]["pid"], signal.SIGKILL)  # an instance, inside a call or between
            served = sellers.acknowledged
            wait_until(lambda: sellers.acknowledged > served + 30 or sellers.errors, 60,
                       "sales after an instance was killed")
            left = [row["pid"] for row in _instances(deployment, QUOTES)]
            deployment.kill_and_wait_for_restart(QUOTES)  # the pool itself
            served = sellers.acknowledged
            wait_until(lambda: sellers.acknowledged > served + 30 or sellers.errors, 60,
                       "sales after the pool was killed")
        finally:
            sellers.stop()
        assert sellers.errors == []
        assert not any(_alive(pid) for pid in left)  # the new pool stopped them
        # Every acknowledged sale reached the ledger once: re-sent calls ran again on another
        # instance, whose call-outs carried the same ids, answered from the ledger's journal.
        assert deployment.call("app/ledger", "total") == sellers.acknowledged


@pytest.mark.slow
def test_function_root_serves_its_ingress_from_its_instances(tmp_path: Path) -> None:
    source = tmp_path / "src"
    shutil.copytree(FUNCTION_ROOT, source)
    build(source / "app.py", tmp_path / "out")
    with running(tmp_path / "out", tmp_path / "state", "--port", "0",
                 env={"DISTDEV_FUNCTION_IDLE": "1"}) as deployment:
        url = f"http://127.0.0.1:{deployment.status()['app']['http']}"
        assert http_post(url, "greet", {"name": "ann"}) == (200, "hello, ann")
        done, wrong, answered = threading.Event(), [], [0]

        def client(i: int) -> None:
            k = 0
            while not done.is_set():
                k += 1
                answer = http_post(url, "greet", {"name": f"c{i}-{k}", "wait": 0.05})
                if answer != (200, f"hello, c{i}-{k}"):
                    wrong.append(answer)
                answered[0] += 1

        threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        try:
            wait_until(lambda: len(_instances(deployment, "app")) == 3 or wrong, 120,
                       "three instances of the root under eight HTTP clients")
            served = answered[0]
            wait_until(lambda: answered[0] > served + 20, 60, "answers from the instances")
        finally:
            done.set()
            for thread in threads:
                thread.join(120)
        assert wrong == []
        status, body = http_post(url, "remember", {"name": "ann"})
        assert status == 500 and body["error"] == "FrozenStateError", body
        assert http_post(url, "greet", {"name": "bo"}) == (200, "hello, bo")


@pytest.mark.slow
def test_function_down_stops_instances_a_dead_pool_left(tmp_path: Path) -> None:
    build(FUNCTIONS / "app.py", tmp_path / "out")
    deployment = LocalDeployment(tmp_path / "out", tmp_path / "state")
    try:
        instance = _instances(deployment, QUOTES)[0]["pid"]
        supervisor = deployment.info.supervisor
        assert supervisor is not None
        os.kill(supervisor, signal.SIGKILL)  # nothing stops the pool nor its instances now
        os.kill(deployment.info.services[QUOTES].pid or 0, signal.SIGKILL)
        wait_until(lambda: not _alive(supervisor), 30, "the supervisor to die")
        assert _alive(instance)
    finally:
        left = deployment.stop()
    assert left == []
