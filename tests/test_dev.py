"""`distdev dev`: the one-process host serves the root's ingress on loopback, writes the same
build output as `distdev build`, journals runtime events, reloads the changed services on change
keeping every service's state (or, when the new code does not replay, keeps the old code
serving), stops cleanly."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import DISTDEV, SHOP, write_files
from support.dev import DevServer

import distdev


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[DevServer]:
    server = DevServer(SHOP / "app.py", tmp_path)
    yield server
    if server.process.poll() is None:
        server.process.kill()
        server.process.wait()


def test_ingress_request_reaches_a_nested_service_and_answers(dev: DevServer) -> None:
    status, order = dev.post("place_order", {"user": "ann", "item": "book", "quantity": 2})
    assert status == 200 and set(order) == {"order_id", "total", "promo"}
    status, revenue = dev.post("revenue", {})
    assert status == 200
    assert revenue["charges"] == 1 and revenue["total_cents"] in (2400, 2160)  # via the ledger
    status, listed = dev.post("order_status", {"order_id": order["order_id"]})
    assert status == 200 and listed["item"] == "book"


@pytest.mark.parametrize(
    ("export", "body", "status", "message"),
    [
        ("place_order", b"{not json", 400, "JSON"),
        ("place_order", {"user": "ann", "item": "book", "quantity": "two"}, 422, "quantity"),
        ("place_order", {"item": "book"}, 422, "user"),
        ("place_order", {"user": "ann", "item": "book", "colour": "red"}, 422, "colour"),
        ("no_such_export", {}, 404, "place_order"),
        ("place_order", {"user": "ann", "item": "piano"}, 500, "no product 'piano'"),
    ],
)
def test_bad_requests_get_a_clear_status_and_message(
    dev: DevServer, export: str, body: Any, status: int, message: str
) -> None:
    got, answer = dev.post(export, body)
    assert got == status
    assert message in answer["message"], answer


def test_dev_writes_build_output_and_journals_runtime_events_then_stops_cleanly(
    dev: DevServer, tmp_path: Path
) -> None:
    dev.post("place_order", {"user": "bob", "item": "pen"})
    code, output = dev.stop()
    assert code == 0 and "stopped" in output and "Traceback" not in output
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    built = subprocess.run([str(DISTDEV), "build", str(SHOP / "app.py"), "-o",
                            str(tmp_path / "built")], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    reference = json.loads((tmp_path / "built" / "manifest.json").read_text())
    shape = [(s["id"], s["bundle"], s["exports"]) for s in manifest["services"]]
    assert shape == [(s["id"], s["bundle"], s["exports"]) for s in reference["services"]]
    runtime = distdev.read_journal(tmp_path / "state" / "app" / "orders" / "journal.cbor")
    build = distdev.read_journal(tmp_path / "out" / "services" / "app" / "orders" / "journal.cbor")
    assert len(runtime.events) > len(build.events)
    assert runtime.events[: len(build.events)] == build.events


def test_watch_reloads_the_root_with_a_new_export(tmp_path: Path) -> None:
    shop = tmp_path / "shop"
    shutil.copytree(SHOP, shop)
    server = DevServer(shop / "app.py", tmp_path / "work", "--watch")
    try:
        assert server.post("ping", {})[0] == 404
        with open(shop / "app.py", "a") as f:
            f.write("\n\ndef ping() -> str:\n    return 'pong'\n")
        server.wait_for(r"reloaded app: state kept")
        assert server.post("ping", {}) == (200, "pong")  # the ingress serves the new export
    finally:
        code, output = server.stop()
    assert code == 0, output
    assert "change detected (app.py): reloading app from its journal" in output


def test_watch_with_the_output_inside_the_app_reloads_once_per_save(tmp_path: Path) -> None:
    """Its own build output (.distdev/ inside the app, bundles of .py files) never triggers a
    reload; saves by writing, by rename (os.replace, as editors do) and by `sed -i` each do,
    once."""
    names = [f"part{i}" for i in range(8)]
    files = {"app.py": "from distdev import host, import_service\n\nhost.process(http=8080)\n"
             + "".join(f"{n} = import_service('./{n}.py')\n" for n in names)
             + "\ndef total() -> int:\n    return " + " + ".join(f"{n}.value()" for n in names)
             + "\n"}
    files.update({f"{n}.py": f"def value() -> int:\n    return {i}\n" for i, n in enumerate(names)})
    for rel, text in files.items():
        (tmp_path / rel).write_text(text)
    server = DevServer(Path("app.py"), None, "--watch", cwd=tmp_path)
    saves = 0
    try:
        assert (tmp_path / ".distdev" / "build" / "services").is_dir()

        def saved(file: str) -> None:
            nonlocal saves
            saves += 1
            # Each reload names what changed: one of the build's own files would show here.
            assert server.wait_for(r"change detected \((.*)\): reloading") == file
            server.wait_for(r"reloaded .*: state kept")

        # No call has read a value yet, so each new one replays the journal (docs/versioning.md)
        (tmp_path / "part0.py").write_text("def value() -> int:\n    return 100\n")
        saved("part0.py")
        replacement = tmp_path / ".part1.py.swp"  # an editor's save: write aside, rename over
        replacement.write_text("def value() -> int:\n    return 200\n")
        os.replace(replacement, tmp_path / "part1.py")
        saved("part1.py")
        subprocess.run(["sed", "-i", "s/return 2$/return 400/", str(tmp_path / "part2.py")],
                       check=True)
        saved("part2.py")
        assert server.post("total", {}) == (200, 700 + sum(range(3, 8)))
    finally:
        code, output = server.stop()
    assert code == 0, output
    assert output.count("change detected") == saves, output


def test_dev_without_ingress_stays_live_until_interrupted(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("x = 1\n")
    process = subprocess.Popen([str(DISTDEV), "dev", str(tmp_path / "app.py"), "-o",
                                str(tmp_path / "out"), "--state", str(tmp_path / "state")],
                               stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    assert "no HTTP ingress" in process.stderr.readline() + process.stderr.readline()
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    assert sys.platform.startswith("linux")


KEPT = {
    "app.py": """
        from distdev import host, import_service

        host.process(http=8080)
        counter = import_service("./counter.py")
        notes = import_service("./notes.py")
        calls = 0

        def bump(n: int) -> int:
            global calls
            calls += 1
            return counter.add(n)

        def note(text: str) -> int:
            return notes.add(text)

        def served() -> int:
            return calls
    """,
    "counter.py": """
        label = "counter"
        total = 0

        def add(n: int) -> int:
            global total
            total += n
            return total
    """,
    "notes.py": """
        texts: list[str] = []

        def add(text: str) -> int:
            texts.append(text)
            return len(texts)
    """,
}

PATCHED_COUNTER = """import distdev

step = 2  # a global the old code had not; and its `label` is gone
total = 0


def add(n: int) -> int:
    global total
    if distdev.patched("add-twice"):
        total += step * n
    else:
        total += n
    return total
"""

TRIPLED_COUNTER = """total = 0


def add(n: int) -> int:
    global total
    total += 3 * n
    return total
"""


def test_watch_reload_keeps_every_service_state_and_refuses_what_does_not_replay(
    tmp_path: Path,
) -> None:
    app = write_files(tmp_path / "app", KEPT)
    server = DevServer(app / "app.py", tmp_path / "work", "--watch")
    try:
        assert server.post("bump", {"n": 1}) == (200, 1)
        assert server.post("bump", {"n": 2}) == (200, 3)
        assert server.post("note", {"text": "first"}) == (200, 1)

        (app / "counter.py").write_text(PATCHED_COUNTER)  # compatible: behind distdev.patched
        assert server.wait_for(r"change detected \((.*)\): reloading") == "counter.py"
        server.wait_for(r"reloaded app/counter: state kept")
        assert server.post("bump", {"n": 1}) == (200, 5)  # its state (3), the new code (+2)
        assert server.post("served", {}) == (200, 3)  # the root kept its state
        assert server.post("note", {"text": "second"}) == (200, 2)  # so did notes

        (app / "counter.py").write_text(TRIPLED_COUNTER)  # incompatible: history's answers change
        server.wait_for(r"reload refused")
        divergence = server.wait_for(r"(app/counter: at event .*)")
        assert "the journal holds return 1" in divergence, divergence
        assert "its code was at counter.py:" in divergence, divergence  # both lines
        assert "the new code returned 3 at counter.py:" in divergence, divergence
        assert server.post("bump", {"n": 1}) == (200, 7)  # the old code, its state, serve on
    finally:
        code, output = server.stop()
    assert code == 0, output
    journal = tmp_path / "work" / "state" / "app" / "counter" / "journal.cbor"
    replayed = subprocess.run([str(DISTDEV), "replay", str(journal), "--json"],
                              capture_output=True, text=True)
    assert replayed.returncode == 0, replayed.stderr  # it carries the code it ran
    assert json.loads(replayed.stdout)["state"]["total"] == 7


def test_reload_refuses_a_call_that_reaches_the_replaced_instance(tmp_path: Path) -> None:
    """A call that was waiting for the old instance's gate while it was replaced must not run
    the old code after the new code's records: it is refused, saying to call again."""
    from distdev.build import App
    from distdev.engines._reload import reload_services
    from distdev.errors import ServiceUnavailableError

    folder = write_files(tmp_path / "app", KEPT)
    app = App(folder / "app.py", out=tmp_path / "out", state=tmp_path / "state").start()
    try:
        counter = app.service("app/counter")
        assert counter.add(2) == 2
        old = app.services["app/counter"]
        (folder / "counter.py").write_text(PATCHED_COUNTER)
        assert reload_services(app, ["app/counter"]).reloaded == ["app/counter"]
        with pytest.raises(ServiceUnavailableError, match="reloaded with new code"):
            old.handle_call("", "a-chain", "add", [1], {})
        assert counter.add(1) == 4  # the new instance: its state (2), the new code (+2)
        assert app.state("app/counter")["total"] == 4
    finally:
        app.close()
