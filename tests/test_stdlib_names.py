"""Service files named like standard-library modules (calendar.py, secrets.py, queue.py,
email.py) work from their own folder under build, dev, up and the debugger: distdev's own
processes never import application files as top-level modules (``python -P``)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import urllib.request
from pathlib import Path

import pytest
from dap.dap_client import DapClient
from support import DISTDEV, run_distdev, write_files

# distdev imports secrets; http.server imports email.utils, which imports calendar; the local
# engine's and the debugger's machinery import queue.
SERVICES = ("calendar", "secrets", "queue", "email")


@pytest.fixture
def app(tmp_path: Path) -> Path:
    files = {
        "app.py": "from distdev import host, import_service\n\nhost.process(http=8080)\n"
        + "".join(f"{n} = import_service('./{n}.py')\n" for n in SERVICES)
        + "\n\ndef names() -> list[str]:\n    return ["
        + ", ".join(f"{n}.name()" for n in SERVICES) + "]\n",
    }
    for n in SERVICES:
        files[f"{n}.py"] = f"""
            greeting = "{n} here"  # @{n}-top

            def name() -> str:
                return greeting
        """
    return write_files(tmp_path / "app", files)


def _expected() -> list[str]:
    return [f"{n} here" for n in SERVICES]


def test_a_service_named_like_a_stdlib_module_builds_from_its_folder(app: Path) -> None:
    result = run_distdev("build", "app.py", cwd=app)
    assert result.returncode == 0, result.stderr
    manifest = json.loads((app / ".distdev" / "build" / "manifest.json").read_text())
    assert {s["id"] for s in manifest["services"]} == {"app", *(f"app/{n}" for n in SERVICES)}


def test_a_service_named_like_a_stdlib_module_runs_under_dev(app: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONHASHSEED"}
    process = subprocess.Popen([str(DISTDEV), "dev", "app.py", "--port", "0"], cwd=app, env=env,
                               stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    try:
        assert process.stderr is not None
        url = None
        for line in process.stderr:
            found = re.search(r"serving app on (http://127\.0\.0\.1:\d+)", line)
            if found:
                url = found.group(1)
                break
        assert url is not None, "distdev dev did not serve"
        request = urllib.request.Request(f"{url}/names", data=b"{}", method="POST")
        with urllib.request.urlopen(request, timeout=30) as response:
            assert json.loads(response.read()) == _expected()
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_a_service_named_like_a_stdlib_module_runs_under_up(app: Path) -> None:
    assert run_distdev("build", "app.py", cwd=app).returncode == 0
    try:
        up = run_distdev("up", "--detach", "--port", "0", cwd=app, timeout=60)
        assert up.returncode == 0, up.stderr
        called = run_distdev("call", "app.names", "--json", cwd=app)
        assert called.returncode == 0, called.stderr
        assert json.loads(called.stdout) == _expected()
    finally:
        run_distdev("down", cwd=app)


def test_a_service_named_like_a_stdlib_module_stops_at_a_breakpoint_under_the_debugger(
        app: Path) -> None:
    calendar = app / "calendar.py"
    line = next(i for i, text in enumerate(calendar.read_text().splitlines(), 1)
                if "@calendar-top" in text)
    with DapClient(app) as client:
        launched = client.start({"app": "app.py", "port": 0}, {str(calendar): [line]})
        assert launched.success, launched.message
        stop = client.wait_stopped()
        top = client.top(stop["threadId"])
        assert (top["source"]["path"], top["line"]) == (str(calendar), line)
        assert top["name"].startswith("app/calendar")
        client.request("disconnect", {"terminateDebuggee": True})
