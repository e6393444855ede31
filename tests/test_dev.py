"""`distdev dev`: the one-process host serves the root's ingress on loopback, writes the same
build output as `distdev build`, journals runtime events, rebuilds on change, stops cleanly."""

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
from support import DISTDEV, SHOP
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


def test_watch_rebuilds_on_change(tmp_path: Path) -> None:
    shop = tmp_path / "shop"
    shutil.copytree(SHOP, shop)
    server = DevServer(shop / "app.py", tmp_path / "work", "--watch")
    try:
        assert server.post("ping", {})[0] == 404
        with open(shop / "app.py", "a") as f:
            f.write("\n\ndef ping() -> str:\n    return 'pong'\n")
        server.url = server.wait_for(r"serving app on (http://127\.0\.0\.1:\d+)")
        assert server.post("ping", {}) == (200, "pong")
    finally:
        code, output = server.stop()
    assert code == 0, output
    assert "rebuilding" in output


def test_watch_with_the_output_inside_the_app_rebuilds_once_per_save(tmp_path: Path) -> None:
    """Its own build output (.distdev/ inside the app, bundles of .py files) never triggers a
    rebuild; saves by writing, by rename (os.replace, as editors do) and by `sed -i` each do,
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
        assert server.post("total", {}) == (200, sum(range(8)))

        def saved(file: str, expected: int) -> None:
            nonlocal saves
            saves += 1
            # Each rebuild names what changed: one of the build's own files would show here.
            assert server.wait_for(r"change detected \((.*)\): rebuilding") == file
            server.url = server.wait_for(r"serving app on (http://127\.0\.0\.1:\d+)")
            assert server.post("total", {}) == (200, expected)

        (tmp_path / "part0.py").write_text("def value() -> int:\n    return 100\n")
        saved("part0.py", 100 + sum(range(1, 8)))
        replacement = tmp_path / ".part1.py.swp"  # an editor's save: write aside, rename over
        replacement.write_text("def value() -> int:\n    return 200\n")
        os.replace(replacement, tmp_path / "part1.py")
        saved("part1.py", 300 + sum(range(2, 8)))
        subprocess.run(["sed", "-i", "s/return 2$/return 400/", str(tmp_path / "part2.py")],
                       check=True)
        saved("part2.py", 700 + sum(range(3, 8)))
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
