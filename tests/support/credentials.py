"""Per-service credentials under either engine: the bank-and-spy application
(tests/apps/credentials), and what a deployment of it must show: the spy finds no key that
lets it call the bank as the root, and a proxy handed to it at runtime lets it call nothing."""

from __future__ import annotations

import json
import shutil
import stat
import time
from pathlib import Path
from typing import Any, Protocol

from distdev import read_journal
from distdev.engines import Connection
from distdev.journal import CallIn, CallOut, ErrorIn
from distdev.service import CallFailed

from .engines import TESTS, build

CREDENTIALS = TESTS / "apps" / "credentials"

EDGES = {
    "app": ({"app/bank", "app/spy"}, set()),
    "app/bank": (set(), {"app"}),
    "app/spy": ({"app/spy/notes"}, {"app"}),
    "app/spy/notes": (set(), {"app/spy"}),
}
"""Service -> (the services it may call, the services that may call it): its manifest's
proxies, and the others'."""


class Deployed(Protocol):
    """A running deployment of the credentials app, as the operator sees it."""

    state: Path
    out: Path

    def connect(self, service_id: str, caller: str = ..., timeout: float = ...) -> Connection:
        ...

    def address(self, service_id: str) -> str: ...

    def log(self, service_id: str) -> str: ...


def credentials_build(folder: Path) -> Path:
    """Copy tests/apps/credentials into ``folder`` and build it; returns the build folder."""
    shutil.copytree(CREDENTIALS, folder / "credentials")
    out = folder / "out"
    build(folder / "credentials" / "app.py", out)
    return out


def call(deployed: Deployed, service_id: str, export: str, *args: Any) -> Any:
    """A call from the operator, as a client outside the deployment."""
    connection = deployed.connect(service_id)
    try:
        return connection.call("test-client", f"test-{time.monotonic_ns()}", None, export,
                               list(args), {})
    finally:
        connection.close()


def callers_of(journal: Path, export: str) -> list[str]:
    """Who made each call of ``export`` that a service's journal records."""
    return [e.caller for e in read_journal(journal).events
            if type(e) is CallIn and e.export == export]


def wait_for_log(deployed: Deployed, service_id: str, text: str, timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    while text not in deployed.log(service_id):
        assert time.monotonic() < deadline, (f"{text!r} not in the log of {service_id}:\n"
                                             + deployed.log(service_id))
        time.sleep(0.05)
    return deployed.log(service_id)


def check_key_files(state: Path) -> None:
    """Each service's key file holds the keys of its own edges only, readable by this user
    only, in a folder only this user may enter."""
    folder = state / "keys"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for service_id, (callees, callers) in EDGES.items():
        path = folder / (service_id.replace("/", "__") + ".keys")
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        keys = json.loads(path.read_text())
        assert keys["service"] == service_id
        assert (set(keys["calls"]), set(keys["callers"])) == (callees, callers), keys


def check_spy_finds_no_key_to_call_as_the_root(deployed: Deployed) -> None:
    """The spy reads every file of the build and the state folder, the environments and its
    own keys in memory, and tries each key it found to call the bank as the root: it cannot
    read the secret or any key file, and every attempt is refused and logged by the bank."""
    secret = deployed.out / "secret"
    report = call(deployed, "app/spy", "attack", [str(deployed.out), str(deployed.state)],
                  deployed.address("app/bank"))
    assert report["unreadable"].get(str(secret)) == "PermissionError", report["unreadable"]
    key_files = sorted(str(p) for p in (deployed.state / "keys").iterdir())
    assert key_files and all(report["unreadable"].get(p) == "PermissionError"
                             for p in key_files), report["unreadable"]
    assert str(deployed.out / "manifest.json") in report["read"]  # it did read what it could
    assert report["candidates"] >= 3  # at least the spy's own keys, from its memory
    assert report["welcomed"] == [], report
    assert report["refused"] == 4 * report["candidates"], report
    assert any("the proof is not app's" in r for r in report["refusals"]), report["refusals"]
    log = wait_for_log(deployed, "app/bank", "refused a forged caller: a peer claimed to be app")
    assert "refused an unauthenticated peer (claimed caller 'outside-spy')" in log
    assert callers_of(deployed.state / "app" / "bank" / "journal.cbor", "deposit") == []
    assert call(deployed, "app", "deposit", 250) == 250  # the root's own calls still go through
    assert call(deployed, "app/spy", "note", "all is well") == 1  # and so do the spy's own
    assert callers_of(deployed.state / "app" / "bank" / "journal.cbor", "deposit") == ["app"]


def check_a_proxy_handed_over_at_runtime_calls_nothing(deployed: Deployed) -> None:
    """The root hands the spy the bank's proxy at runtime; the spy's call through it is refused
    by the bank (logged), the spy's code gets an error that says why, at once, and the spy's
    journal records the refusal as the call's outcome (a replay raises it again)."""
    before = call(deployed, "app/bank", "balance")
    call(deployed, "app", "hand_over")
    started = time.monotonic()
    try:
        call(deployed, "app/spy", "use_bank", 99)
    except CallFailed as failed:
        info = failed.info
    else:
        raise AssertionError("the spy called the bank through a proxy handed over at runtime")
    assert time.monotonic() - started < 10
    assert info.type == "ServiceUnavailableError", info
    assert "app/spy may not call app/bank" in info.message, info.message
    assert "app/spy holds no proxy to app/bank after the build" in info.message, info.message
    wait_for_log(deployed, "app/bank", "refused a call from app/spy: it holds no proxy to app/bank")
    assert call(deployed, "app/bank", "balance") == before
    events = read_journal(deployed.state / "app" / "spy" / "journal.cbor").events
    out = max(i for i, e in enumerate(events) if type(e) is CallOut)
    assert (events[out].target, events[out].export) == ("app/bank", "deposit")  # type: ignore[union-attr]
    outcome = events[out + 1]
    assert type(outcome) is ErrorIn and outcome.error.type == "ServiceUnavailableError", outcome
