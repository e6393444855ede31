"""`distdev up --detach` starts or fails fast: it returns once every service is ready, or as
soon as one cannot start, naming it and its error; it never holds the caller's pipes, and a
failed start leaves no process behind.

Each command runs as a script would run it: ``subprocess.run(..., capture_output=True)``
with a timeout, so a command that hangs, or a background process that keeps the pipes open,
fails the test instead of stalling it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import DISTDEV, run_distdev, write_files

from distdev import read_journal
from distdev.engines.local._deployment import READY, says_ready


def _processes_of(state: Path) -> list[int]:
    marker = str(state.resolve()).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            status = (entry / "stat").read_text()
        except OSError:
            continue
        if b"distdev" in cmdline and marker in cmdline and ") Z" not in status:
            found.append(int(entry.name))
    return found


def _assert_nothing_left(state: Path) -> None:
    deadline = time.monotonic() + 10
    while _processes_of(state) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _processes_of(state), "processes of the failed deployment are still alive"


def _up_detached(out: Path, state: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONHASHSEED"}
    return subprocess.run([str(DISTDEV), "up", str(out), "--state", str(state), "--detach"],
                          capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture
def two_services(tmp_path: Path) -> Path:
    app = write_files(tmp_path / "src", {
        "app.py": """
            from distdev import host, import_service

            host.process()
            ledger = import_service("./ledger.py")

            def total() -> int:
                return ledger.total()
        """,
        "ledger.py": """
            import random, time

            opened_at = time.time()
            entries = [1, 2, 3, round(random.random())]

            def total() -> int:
                return sum(entries)
        """,
    })
    out = tmp_path / "build"
    result = run_distdev("build", app / "app.py", "-o", out)
    assert result.returncode == 0, result.stderr
    return out


def test_up_detach_with_a_service_that_cannot_be_restored_exits_1_at_once_naming_it(
        two_services: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    # The ledger's state journal, damaged in its middle: it cannot be restored.
    journal = state / "app" / "ledger" / "journal.cbor"
    journal.parent.mkdir(parents=True)
    data = bytearray((two_services / "services" / "app" / "ledger" / "journal.cbor").read_bytes())
    offsets = read_journal(two_services / "services" / "app" / "ledger" / "journal.cbor").offsets
    data[offsets[1] + 9] ^= 0xFF  # inside record 1's payload, with records after it
    journal.write_bytes(bytes(data))

    began = time.monotonic()
    result = _up_detached(two_services, state, timeout=10)
    took = time.monotonic() - began
    assert result.returncode == 1, result
    assert "app/ledger could not start" in result.stderr, result.stderr
    assert "corrupt at byte offset" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    print(f"up --detach failed in {took:.2f} s")
    _assert_nothing_left(state)
    # The damaged journal is left as it was: nothing is lost.
    assert journal.read_bytes() == bytes(data)


def test_up_detach_with_the_ingress_port_in_use_exits_1_within_seconds(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        app = write_files(tmp_path / "src", {"app.py": f"""
            from distdev import host

            host.process(http={port})

            def hello() -> str:
                return "hello"
        """})
        out = tmp_path / "build"
        assert run_distdev("build", app / "app.py", "-o", out).returncode == 0
        state = tmp_path / "state"
        result = _up_detached(out, state, timeout=5)
    assert result.returncode == 1, result
    message = result.stderr.strip()
    assert f"port {port}, where app serves its ingress, is already in use" in message, message
    assert "Traceback" not in result.stderr and len(message.splitlines()) == 1, message
    _assert_nothing_left(state)
    # The port is free again: the same state starts and answers.
    try:
        assert _up_detached(out, state, timeout=60).returncode == 0
        called = run_distdev("call", "app.hello", "--state", state)
        assert called.returncode == 0 and called.stdout.strip() == '"hello"', called
    finally:
        run_distdev("down", "--state", state)
    _assert_nothing_left(state)


def test_up_detach_returns_once_ready_without_holding_the_callers_pipes(
        two_services: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    try:
        # capture_output: run() returns only when every writer of the pipes has closed them,
        # so a supervisor that kept them would make this time out.
        result = _up_detached(two_services, state, timeout=60)
        assert result.returncode == 0, result.stderr
        assert "deployment up in the background: 2 services" in result.stderr
        called = run_distdev("call", "app.total", "--state", state)
        assert called.returncode == 0 and called.stdout.strip() in ("6", "7"), called
    finally:
        run_distdev("down", "--state", state)
    _assert_nothing_left(state)


def test_up_detach_failure_leaves_a_deployment_that_starts_once_repaired(
        two_services: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    journal = state / "app" / "ledger" / "journal.cbor"
    journal.parent.mkdir(parents=True)
    journal.write_bytes(b"not a journal")
    assert _up_detached(two_services, state, timeout=10).returncode == 1
    shutil.rmtree(journal.parent)  # the user's fix: start the ledger from its build again
    try:
        assert _up_detached(two_services, state, timeout=60).returncode == 0
    finally:
        run_distdev("down", "--state", state)
    _assert_nothing_left(state)


_LOGGING_THREADS = """
import sys, threading
from distdev.engines.local._deployment import READY, log_line

go = threading.Barrier(9)

def chatter(k):
    go.wait()
    for n in range(2000):
        log_line(f"thread {k} line {n}")

threads = [threading.Thread(target=chatter, args=(k,)) for k in range(8)]
for thread in threads:
    thread.start()
go.wait()
for n in range(200):
    log_line(f"main line {n}")
log_line(READY)
for thread in threads:
    thread.join()
"""


def test_a_service_process_announces_ready_on_a_line_of_its_own_while_its_threads_log() -> None:
    """Calls resumed after a restart log from their own threads while the process announces
    that it serves: the marker must reach its supervisor whole, or it never sees it ready."""
    result = subprocess.run([sys.executable, "-c", _LOGGING_THREADS],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines.count(READY) == 1, [line for line in lines if READY in line]
    assert len(lines) == 8 * 2000 + 200 + 1
    assert all(line.startswith(("thread ", "main line ")) for line in lines if line != READY)


def test_the_ready_marker_is_found_after_output_the_service_left_unfinished() -> None:
    assert says_ready(READY + "\n") == (True, "")
    assert says_ready("progress: 40%" + READY + "\n") == (True, "progress: 40%\n")
    assert says_ready("a line\n") == (False, "a line\n")
    assert says_ready(READY + " and more\n") == (False, READY + " and more\n")
