"""The local engine (`distdev up`): a process per service, restored from its journal, serving
authenticated sockets; restarts that lose no acknowledged call and run none twice; the shop
behaves under `up` exactly as under `distdev dev`.

Deployments are started with the real console script (`distdev up --detach`) and always stopped
with `distdev down` in fixture teardown; each teardown then checks that no process of that
deployment (supervisor or `distdev.engines.local._host`) is left.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import SHOP, run_distdev
from support.dev import DevServer
from support.engines import (
    PAUSING,
    SCRIPT,
    LocalDeployment,
    Normalizer,
    ShopDeployment,
    StreamClient,
    build,
    counting_build,
    http_post,
    replayed_states,
    running,
    tally_seen_by_replay,
    wait_until,
)

from distdev import read_journal
from distdev.engines import AuthenticationError, Connection, GroupCommit
from distdev.engines import _wire as wire
from distdev.engines._keys import outside_key
from distdev.journal import CallIn, JournalWriter, Output
from distdev.service import Recorder

# ---------------------------------------------------------------------------------------------
# Helpers: a deployment started by `distdev up --detach`, and processes left behind.
















# ---------------------------------------------------------------------------------------------
# The counting application, built, its source moved away, then deployed (shared by most tests).


class CountingDeployment:
    def __init__(self, deployment: LocalDeployment, source: Path, moved_to: Path) -> None:
        self.deployment = deployment
        self.source = source
        self.moved_to = moved_to


@pytest.fixture(scope="module")
def counting(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CountingDeployment]:
    work = tmp_path_factory.mktemp("counting")
    source, out = counting_build(work)
    moved_to = work / "moved-away"
    source.rename(moved_to)  # the build must carry everything the deployment needs
    with running(out, work / "state") as deployment:
        yield CountingDeployment(deployment, source, moved_to)


def test_up_runs_and_answers_after_the_source_tree_is_moved_away(
    counting: CountingDeployment,
) -> None:
    deployment = counting.deployment
    manifest = json.loads((deployment.out / "manifest.json").read_text())
    assert not counting.source.exists() and not Path(manifest["app_root"]).exists()
    before = deployment.call("app/tally", "snapshot")
    assert deployment.call("app", "add", 7) == len(before) + 1
    assert deployment.call("app/tally", "snapshot") == [*before, 7]
    result = run_distdev("call", "--state", deployment.state, "app.add", "8", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == len(before) + 2


def test_up_runs_each_service_in_its_own_live_process(counting: CountingDeployment) -> None:
    rows = counting.deployment.status()
    assert set(rows) == {"app", "app/tally"}
    pids = {row["pid"] for row in rows.values()}
    assert len(pids) == 2 and os.getpid() not in pids
    assert all(row["alive"] and row["restarts"] == 0 for row in rows.values()), rows
    assert all(row["address"].startswith("unix:") for row in rows.values()), rows


def test_replay_of_a_runtime_journal_reproduces_the_running_state(
    counting: CountingDeployment,
) -> None:
    deployment = counting.deployment
    for n in (101, 102, 103):
        deployment.call("app", "add", n)
    running_state = deployment.call("app/tally", "snapshot")
    assert running_state[-3:] == [101, 102, 103]
    assert tally_seen_by_replay(deployment.journal("app/tally")) == running_state


def test_connection_with_a_wrong_secret_is_refused_and_logged(
    counting: CountingDeployment,
) -> None:
    deployment = counting.deployment
    pid = deployment.live_pid("app")
    with pytest.raises(AuthenticationError, match="refused this client"):
        Connection(deployment.address("app"), b"not-the-deployment-secret", "intruder", 5.0)
    deployment.wait_for_log("app", "refused an unauthenticated peer (claimed caller 'intruder')")
    assert deployment.call("app", "add", 1) >= 1
    assert deployment.live_pid("app") == pid


def raw_socket(address: str) -> socket.socket:
    family, sockaddr = wire.parse_address(address)
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.connect(sockaddr)  # blocking: waits for room in the listen backlog (see the burst test)
    sock.settimeout(10)
    return sock


def authenticated_raw_socket(address: str, secret: bytes) -> socket.socket:
    sock = raw_socket(address)
    challenge = wire.receive(sock, wire.HANDSHAKE_FRAME)
    assert isinstance(challenge, wire.Challenge)
    key = outside_key(secret, challenge.service)  # the operator's key to that service
    wire.send(sock, wire.Auth("raw-client", wire.proof(key, challenge.nonce, "raw-client")))
    assert isinstance(wire.receive(sock), wire.Welcome)
    return sock


def frame(body: bytes) -> bytes:
    return len(body).to_bytes(4, "big") + body


def encoded(message: Any) -> bytes:
    return frame(msgspec.msgpack.encode(message))


def decoded(answer: bytes) -> wire.Message:
    """The first frame of ``answer``."""
    size = int.from_bytes(answer[:4], "big")
    return msgspec.msgpack.decode(answer[4 : 4 + size], type=wire.Message)


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (must happen in 10 s)."""
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    return received


BEFORE_AUTH_CASES: dict[str, bytes] = {
    "a byte ramp (read as a huge length)": bytes(range(256)) * 3,
    "oversized for a handshake": (wire.HANDSHAKE_FRAME + 1).to_bytes(4, "big") + b"x" * 64,
    "a call before authenticating": encoded(
        wire.Call(1, "intruder", "chain", None, "add", b"\x81\x01", b"\xa0")),
    "not msgpack": frame(b"\xc1\xc1\xc1\xc1"),
    "an auth with a wrong proof": encoded(wire.Auth("intruder", b"\x00" * 32)),
    "an auth of the wrong shape": encoded(["auth", 1, 2, 3]),
}

AFTER_AUTH_CASES: dict[str, bytes] = {
    "oversized": (wire.MAX_FRAME + 1).to_bytes(4, "big") + b"x" * 1024,
    "not msgpack": frame(b"\xc1" * 100),
    "a welcome instead of a call": encoded(wire.Welcome("app")),
    "a call of the wrong shape": encoded(["call", "one", 2]),
    "arguments that are not CBOR": encoded(
        wire.Call(1, "raw-client", "chain", None, "add", b"\xff\xff", b"\xa0")),
    "arguments that are not a list": encoded(
        wire.Call(1, "raw-client", "chain", None, "add", b"\x01", b"\xa0")),
}


@pytest.mark.parametrize("payload", BEFORE_AUTH_CASES.values(), ids=BEFORE_AUTH_CASES.keys())
def test_server_refuses_a_bad_first_frame_and_keeps_serving(
    counting: CountingDeployment, payload: bytes
) -> None:
    deployment = counting.deployment
    pid, count = deployment.live_pid("app"), len(deployment.call("app/tally", "snapshot"))
    with raw_socket(deployment.address("app")) as sock:
        challenge = wire.receive(sock, wire.HANDSHAKE_FRAME)
        assert isinstance(challenge, wire.Challenge) and challenge.service == "app"
        sock.sendall(payload)
        answer = read_until_closed(sock)  # the server closes the connection itself
    if answer:
        assert isinstance(decoded(answer), wire.Refused), answer
    assert "refused" in deployment.wait_for_log("app", "refused")
    assert deployment.call("app", "add", 5) == count + 1  # no service code ran for the frame
    assert deployment.live_pid("app") == pid


@pytest.mark.parametrize("payload", AFTER_AUTH_CASES.values(), ids=AFTER_AUTH_CASES.keys())
def test_server_closes_a_connection_on_a_bad_frame_after_auth_and_keeps_serving(
    counting: CountingDeployment, payload: bytes
) -> None:
    deployment = counting.deployment
    pid, count = deployment.live_pid("app"), len(deployment.call("app/tally", "snapshot"))
    with authenticated_raw_socket(deployment.address("app"), deployment.secret) as sock:
        sock.sendall(payload)
        answer = read_until_closed(sock)
    assert answer, "the server closed the connection without saying why"
    refused = decoded(answer)
    assert isinstance(refused, wire.Refused), refused
    deployment.wait_for_log("app", f"closed a connection: {refused.reason}")
    assert deployment.call("app", "add", 5) == count + 1
    assert deployment.live_pid("app") == pid


def test_server_survives_a_truncated_frame_after_auth(counting: CountingDeployment) -> None:
    deployment = counting.deployment
    pid = deployment.live_pid("app")
    with authenticated_raw_socket(deployment.address("app"), deployment.secret) as sock:
        sock.sendall((1000).to_bytes(4, "big") + b"\x98" + b"\x00" * 20)
    deployment.wait_for_log("app", "closed a connection: the frame is cut short")
    assert isinstance(deployment.call("app", "add", 5), int)
    assert deployment.live_pid("app") == pid


def test_idle_unauthenticated_connections_do_not_block_callers(
    counting: CountingDeployment,
) -> None:
    deployment = counting.deployment
    idle = [raw_socket(deployment.address("app")) for _ in range(64)]  # connect, say nothing
    try:
        started = time.monotonic()
        assert isinstance(deployment.call("app", "add", 6), int)
        assert time.monotonic() - started < 5
    finally:
        for sock in idle:
            sock.close()


def test_a_burst_of_simultaneous_clients_all_connect(counting: CountingDeployment) -> None:
    deployment = counting.deployment
    clients = 32
    errors: list[str] = []
    answered: list[int] = []
    start = threading.Barrier(clients, timeout=30)

    def client(k: int) -> None:
        try:
            start.wait()
            connection = Connection(deployment.address("app"), deployment.secret, f"burst-{k}",
                                    30.0)
            try:
                answered.append(connection.call(f"burst-{k}", f"burst-{k}", None, "add", [k],
                                                {}))
            finally:
                connection.close()
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == [] and len(answered) == clients


_wire_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text(max_size=20)
    | st.binary(max_size=40) | st.sampled_from(["auth", "call", "reply", "welcome", "refused"]),
    lambda inner: st.lists(inner, max_size=8) | st.dictionaries(st.text(max_size=8), inner,
                                                                  max_size=4),
    max_leaves=20,
)
_junk = st.one_of(
    st.binary(max_size=64),
    st.binary(min_size=64, max_size=9000),
    st.builds(lambda size, body: size.to_bytes(4, "big") + body,
              st.integers(0, 2**32 - 1), st.binary(max_size=300)),
    _wire_values.map(lambda value: encoded(value)),
)


@pytest.fixture(scope="module")
def app_threads_at_rest(counting: CountingDeployment) -> int:
    return _threads(counting.deployment.live_pid("app"))


def _threads(pid: int) -> int:
    found = re.search(r"^Threads:\s+(\d+)", Path(f"/proc/{pid}/status").read_text(), re.MULTILINE)
    assert found is not None
    return int(found.group(1))


def test_server_survives_arbitrary_bytes_and_keeps_serving(
    counting: CountingDeployment, app_threads_at_rest: int
) -> None:
    """300 frames of arbitrary bytes, before and after authenticating; afterwards the same
    process still answers, has logged the refusals, and no connection thread is stuck."""
    deployment = counting.deployment
    address = deployment.address("app")

    @settings(max_examples=300, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow])
    @given(junk=st.lists(_junk, min_size=1, max_size=3).map(b"".join), authenticate=st.booleans())
    def send(junk: bytes, authenticate: bool) -> None:
        with (authenticated_raw_socket(address, deployment.secret) if authenticate
              else raw_socket(address)) as sock:
            with contextlib.suppress(OSError):  # the server may close first: a refusal
                sock.sendall(junk)

    send()
    rows = deployment.status()
    assert rows["app"]["restarts"] == 0 and rows["app"]["alive"]
    count = len(deployment.call("app/tally", "snapshot"))
    assert deployment.call("app", "add", 9) == count + 1
    assert "refused a peer that did not authenticate" in deployment.log("app")
    assert "Traceback" not in deployment.log("app")
    pid = rows["app"]["pid"]
    wait_until(lambda: _threads(pid) <= app_threads_at_rest + 2, 10,
               f"app's connection threads to end ({_threads(pid)} threads)")


@pytest.mark.slow
def test_sixteen_concurrent_clients_for_ten_seconds_see_no_error(
    counting: CountingDeployment,
) -> None:
    deployment = counting.deployment
    before = deployment.call("app/tally", "snapshot")
    clients, seconds = 16, 10.0
    acknowledged: list[list[int]] = [[] for _ in range(clients)]
    results: list[list[int]] = [[] for _ in range(clients)]
    errors: list[str] = []
    # connected one after the other (a simultaneous burst is another test's subject)
    connections = [deployment.connect("app", caller=f"load-{k}") for k in range(clients)]
    start = threading.Barrier(clients, timeout=30)

    def client(k: int) -> None:
        connection = connections[k]
        try:
            start.wait()
            deadline = time.monotonic() + seconds
            i = 0
            while time.monotonic() < deadline:
                n = 1_000_000 * (k + 1) + i
                results[k].append(connection.call(f"load-{k}", f"load-{k}-{i}", i, "add", [n],
                                                  {}))
                acknowledged[k].append(n)
                i += 1
        except BaseException as exc:
            errors.append(f"client {k}: {type(exc).__name__}: {exc}")
        finally:
            connection.close()

    threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 60)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    total = sum(map(len, acknowledged))
    assert all(acknowledged), "a client made no call"
    after = deployment.call("app/tally", "snapshot")
    assert len(after) == len(before) + total
    assert after[: len(before)] == before
    # each acknowledged call ran exactly once, and each client's calls in its own order
    new = after[len(before):]
    for k in range(clients):
        assert [n for n in new if n // 1_000_000 == k + 1] == acknowledged[k]
    # one call at a time: the counts answered are exactly the ones the tally went through
    assert sorted(r for per_client in results for r in per_client) == list(
        range(len(before) + 1, len(after) + 1))


# ---------------------------------------------------------------------------------------------
# kill -9 during a stream of calls.


@pytest.fixture(scope="module")
def counting_tcp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalDeployment]:
    """A deployment of its own (restarts must not disturb the others), over loopback TCP."""
    work = tmp_path_factory.mktemp("counting-tcp")
    _, out = counting_build(work)
    with running(out, work / "state", "--tcp") as deployment:
        yield deployment




@pytest.mark.slow
@pytest.mark.parametrize("victim", ["app/tally", "app"])
def test_kill_9_during_a_stream_of_calls_loses_none_and_runs_none_twice(
    counting_tcp: LocalDeployment, victim: str
) -> None:
    deployment = counting_tcp
    assert deployment.address(victim).startswith("tcp:127.0.0.1:")
    other = "app" if victim == "app/tally" else "app/tally"
    other_pid = deployment.live_pid(other)
    rows_before = deployment.status()
    restarts_before = rows_before[victim]["restarts"]
    base = 10_000_000 if victim == "app" else 20_000_000
    stream = StreamClient(deployment, f"stream-client/{victim}", base)
    stream.start()
    try:
        stream.wait_for(20)
        for _ in range(2):  # twice: the second time it is a restored process that dies
            killed = deployment.live_pid(victim)
            os.kill(killed, signal.SIGKILL)

            def restarted(killed: int = killed) -> bool:
                return deployment.live_pid(victim) != killed

            wait_until(restarted, 20, f"{victim} to restart")
            stream.wait_for(20)
    finally:
        stream.finish.set()
        stream.join(60)
    assert not stream.is_alive()
    assert stream.error is None, stream.error + "\n" + deployment.logs()
    assert stream.resends >= 1 or victim == "app/tally"  # the root's death reaches the client

    expected = [base + i for i in range(1, len(stream.acknowledged) + 1)]
    assert stream.acknowledged == expected
    # the tally ran every acknowledged call exactly once, in order ...
    seen = tally_seen_by_replay(deployment.journal("app/tally"))
    assert [n for n in seen if base < n < base + 10_000_000] == expected
    # ... and the answers, counts of the tally's calls, went up by one per call
    first = stream.answers[0]
    assert stream.answers == list(range(first, first + len(stream.answers)))
    assert deployment.call("app/tally", "snapshot") == seen

    rows = deployment.status()
    assert rows[victim]["restarts"] >= restarts_before + 2, rows
    assert rows[victim]["alive"] and rows[other]["alive"], rows
    assert rows[other]["pid"] == other_pid, rows  # only the victim was restarted
    assert rows[other]["restarts"] == rows_before[other]["restarts"], rows


@pytest.mark.slow
def test_kill_9_of_the_root_runs_no_call_twice_when_another_client_calls_first(
    tmp_path: Path,
) -> None:
    """Two clients, each re-sending with its own caller id: X's call is inside the tally when
    the root dies; after the restart Y's call happens to arrive before X's re-send."""
    shutil.copytree(PAUSING, tmp_path / "pausing")
    build(tmp_path / "pausing" / "app.py", tmp_path / "out")
    with running(tmp_path / "out", tmp_path / "state") as deployment:
        first_attempt_failed = threading.Event()

        def first_attempt() -> None:
            connection = deployment.connect("app", "client-x", 30.0)
            try:
                connection.call("client-x", "chain-x", 1, "add", [1, 1.0], {})
            except (OSError, EOFError, wire.FrameError):
                first_attempt_failed.set()
            finally:
                connection.close()

        thread = threading.Thread(target=first_attempt)
        thread.start()
        deployment.wait_for_log("app/tally", "recorded 1; pausing")  # X is inside the tally
        root = deployment.live_pid("app")
        os.kill(root, signal.SIGKILL)
        thread.join(30)
        assert first_attempt_failed.is_set()  # never acknowledged: X must re-send it
        wait_until(lambda: deployment.live_pid("app") != root, 20, "the root to restart")

        def connect(caller: str) -> Connection | None:
            with contextlib.suppress(OSError):
                return deployment.connect("app", caller, 30.0)
            return None

        y = wait_until(lambda: connect("client-y"), 20, "the restarted root to listen")
        y.call("client-y", "chain-y", 1, "add", [2, 0.0], {})  # Y's first call comes first
        y.close()
        x = deployment.connect("app", "client-x", 30.0)
        x.call("client-x", "chain-x", 1, "add", [1, 1.0], {})  # X re-sends, same id and args
        x.close()
        seen = deployment.call("app/tally", "snapshot")
        assert sorted(seen) == [1, 2], f"the tally ran {seen}"


def test_group_commit_makes_a_record_written_during_a_flush_durable(tmp_path: Path) -> None:
    """Call 1's reply waits in ``wait_durable`` (its leader flushes) while call 2, on another
    thread, writes its last record during that flush, then waits for durability itself: the
    record must be on disk when call 2's wait returns (a flush must not clear the dirty mark of
    a record written during it)."""
    _, out = counting_build(tmp_path)
    journal = tmp_path / "journal.cbor"
    shutil.copyfile(out / "services" / "app" / "tally" / "journal.cbor", journal)
    writer = JournalWriter.append_to(journal)
    commit = GroupCommit(writer)
    recorder = Recorder(writer)
    real_file = writer._file
    call_2 = threading.Thread(target=recorder.output, args=("stdout", "call 2's last record"))

    class InterleavedFile:
        """The journal file; its first flush lets call 2 write (or try to) right after it."""

        def write(self, data: bytes) -> int:
            return real_file.write(data)

        def flush(self) -> None:
            real_file.flush()
            if not call_2.is_alive() and call_2.ident is None:
                call_2.start()
                call_2.join(0.3)  # done, or waiting for the writer to finish this flush

        def fileno(self) -> int:
            return real_file.fileno()

    writer._file = InterleavedFile()  # type: ignore[assignment]
    try:
        recorder.output("stdout", "call 1's last record")
        commit.wait_durable()  # call 1's reply may leave
        call_2.join(10)
        assert not call_2.is_alive()
        commit.wait_durable()  # call 2's reply may leave: its record must be on disk now
        on_disk = read_journal(journal).events[-1]
        assert isinstance(on_disk, Output) and on_disk.text == "call 2's last record", on_disk
    finally:
        writer._file = real_file
        writer.close()


# ---------------------------------------------------------------------------------------------
# The shop: `distdev up` against `distdev dev`.






@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ShopDeployment]:
    work = tmp_path_factory.mktemp("shop")
    source = work / "shop"
    shutil.copytree(SHOP, source)
    config = json.loads((source / "config.json").read_text())
    config["promo_rate"] = 0  # random.random() < 0 never holds: prices are deterministic
    (source / "config.json").write_text(json.dumps(config))
    build(source / "app.py", work / "out")
    with running(work / "out", work / "state", "--port", "0") as deployment:
        yield ShopDeployment(deployment, source)


def call_ins(journal: Path) -> int:
    return sum(type(event) is CallIn for event in read_journal(journal).events)


def test_shop_request_travels_through_at_least_three_service_processes(
    shop: ShopDeployment,
) -> None:
    deployment = shop.deployment
    rows = deployment.status()
    assert {sid for sid, row in rows.items() if row["kind"] == "service"} == {
        "app", "app/catalog", "app/billing", "app/billing/ledger", "app/orders"}
    assert {sid: row["kind"] for sid, row in rows.items() if row["kind"] != "service"} == {
        "app/reviews": "sql", "app/billing/signing-key": "secret",
        "app/reviewed": "topic"}  # a process each, too
    pids = [row["pid"] for row in rows.values()]
    assert all(row["alive"] for row in rows.values()) and len(set(pids)) == len(pids), rows
    path = ["app", "app/orders", "app/billing", "app/billing/ledger"]
    before = {sid: call_ins(deployment.journal(sid)) for sid in path}
    status, answer = shop.post("place_order", {"user": "ann", "item": "book", "quantity": 2})
    assert (status, answer["total"]) == (200, "24.00 EUR"), answer
    after = {sid: call_ins(deployment.journal(sid)) for sid in path}
    assert all(after[sid] >= before[sid] + 1 for sid in path), (before, after)
    ledger = read_journal(deployment.journal("app/billing/ledger")).events
    last_call = [e for e in ledger if type(e) is CallIn][-1]
    assert (last_call.caller, last_call.export) == ("app/billing", "record")










@pytest.mark.slow
def test_shop_state_under_up_equals_the_state_under_dev_for_the_same_requests(
    shop: ShopDeployment, tmp_path: Path
) -> None:
    for export, body in SCRIPT:
        shop.post(export, body)
    order_id = next(a["order_id"] for e, _, (s, a) in shop.history if e == "place_order"
                    and s == 200)
    shop.post("order_status", {"order_id": order_id})
    statuses = [status for _, _, (status, _) in shop.history]
    assert 200 in statuses and 422 in statuses and 500 in statuses, shop.history

    dev = DevServer(shop.source / "app.py", tmp_path)
    dev_answers: list[tuple[int, Any]] = []
    order_ids: dict[str, str] = {}  # an order id from `up` -> the same order under dev
    try:
        for export, body, (_, up_answer) in shop.history:
            answer = http_post(dev.url, export, {k: order_ids.get(v, v) if isinstance(v, str)
                                                 else v for k, v in body.items()})
            dev_answers.append(answer)
            if isinstance(up_answer, dict) and "order_id" in up_answer:
                order_ids[up_answer["order_id"]] = answer[1]["order_id"]
    finally:
        code, _ = dev.stop()
    assert code == 0

    normalize_up, normalize_dev = Normalizer(), Normalizer()
    assert normalize_dev(dev_answers) == normalize_up([answer for *_, answer in shop.history])

    ids = sorted(sid for sid, row in shop.deployment.status().items()
                 if row["kind"] == "service")  # resources keep no journal
    up_states = replayed_states(shop.deployment.state, ids)
    dev_states = replayed_states(tmp_path / "state", ids)
    placed = [a for e, _, (s, a) in shop.history if e == "place_order" and s == 200]
    assert len(up_states["app/orders"]["orders"]) == len(placed)
    assert len(up_states["app/billing/ledger"]["entries"]) == len(placed)
    assert {sid: normalize_dev(dev_states[sid]) for sid in ids} == {
        sid: normalize_up(up_states[sid]) for sid in ids}
