"""Replaying an interleaved journal under the debugger: the replay stops before an event on the
thread of the call waiting for it (each interleaved call runs on a thread of its own), with
that call's frames live, and goes on to the end of the journal."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from dap.dap_client import DapClient

import distdev
from distdev.journal import ResultIn, Switch

Start = Callable[..., DapClient]
INTERLEAVING = Path(__file__).resolve().parent.parent / "apps" / "interleaving"
SEP = " \u203a "


def _wait(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def interleaved_journal(tmp_path: Path) -> Path:
    """slow('a') and slow('b') wait in the two children; a ends first, then b."""
    app = distdev.App(INTERLEAVING / "app.py", out=tmp_path / "out", state=tmp_path / "state")
    gates = tmp_path / "gates"
    gates.mkdir()
    app.start()
    try:
        root = app.service("app")
        threads = []
        for name, via in (("a", "left"), ("b", "right")):
            thread = threading.Thread(target=root.slow, args=(str(gates), name, via))
            thread.start()
            threads.append(thread)
            _wait(lambda name=name: (gates / f"{name}.waiting").exists(), f"slow({name!r})")
        for name, thread in zip("ab", threads):
            (gates / name).touch()
            thread.join(60)
        return Path(app.journal("app"))
    finally:
        app.close()


def test_replay_under_the_debugger_stops_in_the_call_an_interleaved_result_resumes(
    adapter: Start, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ROOT_INTERLEAVE", "1")
    journal = interleaved_journal(tmp_path)
    events = distdev.read_journal(journal).events
    switch = next(e for e in events if type(e) is Switch)
    result = next(e for e in events if type(e) is ResultIn and e.seq > switch.seq)
    client = adapter(PYTHONHASHSEED="0")
    launched = client.start({"journal": str(journal), "stopAtEvent": result.seq})
    assert launched.success, launched.message

    stop = client.wait_stopped()
    assert (stop["reason"], stop["description"]) == (
        "journal event", f"before event {result.seq} of app")
    frames = client.stack(stop["threadId"]).body["stackFrames"]
    assert [f["name"] for f in frames] == [f"app{SEP}before event {result.seq}", f"app{SEP}slow"]
    assert client.locals_of(frames[1]["id"])["name"] == "'a'"  # the call the switch resumed

    client.request("continue", {"threadId": stop["threadId"]})
    end = client.wait_stopped()
    assert end["reason"] == "end of journal"
    frames = client.stack(end["threadId"]).body["stackFrames"]
    assert "'end b'" in client.globals_of(frames[0]["id"])["log"]
    client.request("continue", {"threadId": end["threadId"]})
    client.wait_event("terminated")
