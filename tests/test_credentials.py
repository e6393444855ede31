"""Per-service credentials under the local engine (`distdev up`, Unix sockets and --tcp): each
service process holds only the keys of its own edges, proves which service it is, may call only
the services it holds a proxy to after the build, and cannot read the build's secret or any key
file. A forged caller and a call without a capability are refused, logged by the callee, and
reported to the caller at once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import run_distdev
from support.credentials import (
    check_a_proxy_handed_over_at_runtime_calls_nothing,
    check_key_files,
    check_spy_finds_no_key_to_call_as_the_root,
    credentials_build,
)
from support.engines import LocalDeployment, running, wait_until

from distdev.engines import AuthenticationError, Connection
from distdev.engines import _wire as wire
from distdev.engines._confine import landlock_abi

needs_landlock = pytest.mark.skipif(
    landlock_abi() is None, reason="this kernel has no Landlock: service processes run "
    "unconfined (their logs warn), and can read the deployment's key material")


@pytest.fixture(scope="module", params=["unix", "tcp"])
def bank(request: pytest.FixtureRequest,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalDeployment]:
    work = tmp_path_factory.mktemp(f"credentials-{request.param}")
    out = credentials_build(work)
    options = ("--tcp",) if request.param == "tcp" else ()
    with running(out, work / "state", *options) as deployment:
        yield deployment


def test_each_service_holds_the_keys_of_its_own_edges_only(bank: LocalDeployment) -> None:
    check_key_files(bank.state)
    for service_id, entry in bank.info.services.items():
        assert entry.pid is not None
        command = Path(f"/proc/{entry.pid}/cmdline").read_bytes().split(b"\0")
        key_file = str(bank.state / "keys" / (service_id.replace("/", "__") + ".keys"))
        assert command[command.index(b"--keys") + 1].decode() == key_file
        assert bank.secret not in Path(f"/proc/{entry.pid}/environ").read_bytes()


@needs_landlock
def test_a_service_finds_no_key_that_lets_it_call_as_another(bank: LocalDeployment) -> None:
    for service_id in bank.info.services:
        assert "confined (Landlock" in bank.log(service_id)
    check_spy_finds_no_key_to_call_as_the_root(bank)


def test_a_proxy_handed_over_at_runtime_is_no_capability(bank: LocalDeployment) -> None:
    check_a_proxy_handed_over_at_runtime_calls_nothing(bank)


def test_the_operator_key_does_not_speak_for_a_service(bank: LocalDeployment) -> None:
    with pytest.raises(AuthenticationError, match="app is a service, proven by its own key only"):
        Connection(bank.address("app/bank"), bank.secret, "app", 10.0)
    bank.wait_for_log("app/bank", "refused the operator's key for app")


def test_a_call_must_come_from_the_caller_that_authenticated(bank: LocalDeployment) -> None:
    connection = bank.connect("app/bank", caller="test-client")
    try:
        wire.send(connection.sock, wire.Call(1, "app", "chain", None, "deposit", b"\x81\x01",
                                             b"\xa0"))
        answer = wire.receive(connection.sock)
    finally:
        connection.close()
    assert isinstance(answer, wire.Refused) and "a forged caller" in answer.reason, answer
    bank.wait_for_log("app/bank", "a forged caller: a call from 'app' on a connection "
                                  "'test-client' authenticated")


def test_distdev_call_reaches_every_service(bank: LocalDeployment) -> None:
    for target, args in (("app/bank.balance", []), ("app/spy/notes.add", ['"from the operator"'])):
        result = run_distdev("call", "--state", bank.state, target, *args, "--json")
        assert result.returncode == 0, result.stderr
        assert isinstance(json.loads(result.stdout), int)


@needs_landlock
def test_a_restarted_service_reads_its_keys_again_and_is_confined_again(
    bank: LocalDeployment,
) -> None:
    def starts() -> int:
        return bank.log("app/bank").splitlines().count("ready")

    before, pid = starts(), bank.live_pid("app/bank")
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: starts() > before, 60, "the supervisor to restart app/bank")
    balance = bank.call("app/bank", "balance")
    connection = bank.connect("app")
    try:
        assert connection.call("test-client", "after-restart", None, "deposit", [5], {}) \
            == balance + 5
    finally:
        connection.close()
    assert bank.log("app/bank").count("confined (Landlock") == starts()


CONFINED = """
    import json, os, subprocess
    from pathlib import Path
    from distdev.engines._confine import confine

    here = Path.cwd()
    assert confine([here / "out" / "secret", here / "state" / "keys"], print)

    def reads(path):
        try:
            Path(path).read_bytes()
            return "read"
        except OSError as exc:
            return type(exc).__name__

    (here / "state" / "journal").write_text("appended")  # writing is not confined
    (here / "later.txt").write_text("written after")
    print(json.dumps({
        "secret": reads("out/secret"), "key": reads("state/keys/app.keys"),
        "manifest": reads("out/manifest.json"), "journal": reads("state/journal"),
        "beside": reads("beside.txt"), "python": reads(os.__file__),
        "later, on the way": reads("later.txt"),
        "a child": subprocess.run(["cat", "out/secret"], capture_output=True).returncode,
    }))
"""


@needs_landlock
def test_a_confined_process_reads_everything_but_the_key_material(tmp_path: Path) -> None:
    for rel, text in {"out/secret": "s" * 64, "out/manifest.json": "{}", "state/journal": "",
                      "state/keys/app.keys": "{}", "beside.txt": "b"}.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(CONFINED)], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    confined, seen = result.stdout.splitlines()
    assert confined.startswith("confined (Landlock ABI")
    assert json.loads(seen) == {
        "secret": "PermissionError", "key": "PermissionError", "manifest": "read",
        "journal": "read", "beside": "read", "python": "read",
        "later, on the way": "PermissionError",  # the documented cost (docs/local-engine.md)
        "a child": 1,
    }
