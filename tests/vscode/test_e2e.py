"""The VS Code extension in a real VS Code: code-server + headless Chromium, driven by e2e.mjs.

The .vsix is the one `make vsix` writes (vscode-extension/distdev-<version>.vsix), made in this
run. The workspace is a copy of examples/shop
whose `.venv` links to the virtual environment running this test, so the extension finds distdev
the way it finds it for a user. The evidence checked here is the DAP trace the extension wrote
(what VS Code and the adapter really said) and what the page showed (Call Stack rows, the active
tab, the cursor line); screenshots are kept in tests/vscode/artifacts/.

The toolchain (Node 24, code-server, playwright-core, vsce) is installed by
`make vscode-e2e-deps` (part of `make test`) into a cache outside the repository.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from support import vscode_toolchain

import distdev
from distdev.journal import is_boundary

HERE = Path(__file__).resolve().parent


# One run of the editor feeds every test here and writes ARTIFACTS afresh: under `pytest -n`,
# two workers each starting one cleared the folder under the other's screenshots.
pytestmark = pytest.mark.xdist_group("vscode-e2e")

toolchain = vscode_toolchain()
REPO = HERE.parent.parent
EXTENSION = REPO / "vscode-extension"
SHOP = REPO / "examples" / "shop"
ARTIFACTS = HERE / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")
DRIVER_DEADLINE_S = 100
HARD_TIMEOUT_S = 130  # the driver's own deadline, plus time to write its results


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _marker(file: Path, name: str) -> int:
    for number, line in enumerate(file.read_text().splitlines(), 1):
        if re.search(rf"#\s*@{re.escape(name)}(?![\w-])", line):
            return number
    raise AssertionError(f"no marker @{name} in {file}")


def _processes_with(token: str) -> list[int]:
    """Processes whose environment carries this run's token: everything the run started,
    however it was detached (code-server's file watcher, the adapter, the debuggee, chromium)."""
    needle = f"DISTDEV_E2E_RUN={token}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def _kill_run(process: subprocess.Popen[str], token: str) -> list[int]:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    strays = _processes_with(token)
    for pid in strays:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return strays


def _make_vsix() -> Path:
    """``make vsix``, exactly as a user runs it: the .vsix this run installs is that file."""
    vsix = toolchain.vsix_path()
    result = subprocess.run(["make", "-C", str(REPO), "vsix", f"PYTHON={sys.executable}"],
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, f"make vsix failed:\n{result.stdout}\n{result.stderr}"
    assert vsix.is_file(), f"make vsix wrote no {vsix}:\n{result.stdout}"
    return vsix


def _workspace(tmp: Path, ingress_port: int) -> Path:
    ws = tmp / "shop"
    shutil.copytree(SHOP, ws, ignore=shutil.ignore_patterns(".distdev", "__pycache__"))
    # The copy serves on a free port: two runs (or a demo) on this machine must not collide.
    app = ws / "app.py"
    text = app.read_text()
    patched = text.replace("host.process(http=8080", f"host.process(http={ingress_port}")
    assert patched != text, "examples/shop/app.py no longer declares host.process(http=8080...)"
    app.write_text(patched)
    if sys.prefix != sys.base_prefix:
        # The whole environment, linked: a link to its python alone would lose pyvenv.cfg.
        (ws / ".venv").symlink_to(sys.prefix, target_is_directory=True)
    else:
        (ws / ".vscode").mkdir()
        (ws / ".vscode" / "settings.json").write_text(json.dumps({"distdev.python": sys.executable}))
    return ws


def _trace(file: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in file.read_text().splitlines() if line.strip()]


def _stack_after(trace: list[dict[str, Any]], stop_index: int) -> list[dict[str, Any]]:
    """The frames VS Code was told between this stop and the next, merged by position (it asks
    for the top frame first, then for the rest)."""
    starts: dict[int, int] = {}
    frames: dict[int, dict[str, Any]] = {}
    for line in trace[stop_index + 1:]:
        message = line["message"]
        if line["direction"] == "fromAdapter" and message.get("event") == "stopped":
            break
        if line["direction"] == "toAdapter" and message.get("command") == "stackTrace":
            starts[message["seq"]] = message["arguments"].get("startFrame", 0)
        elif message.get("type") == "response" and message.get("command") == "stackTrace" \
                and message.get("success") and message["request_seq"] in starts:
            for i, frame in enumerate(message["body"]["stackFrames"]):
                frames.setdefault(starts[message["request_seq"]] + i, frame)
    return [frames[i] for i in sorted(frames)]


@pytest.fixture(scope="module")
def e2e_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    if not toolchain.is_installed():
        pytest.skip(f"the VS Code e2e toolchain is not installed in {toolchain.toolchain_dir()}: "
                    "run `make vscode-e2e-deps` (or `python tests/vscode/toolchain.py install`)")
    if not CHROMIUM.is_file():
        pytest.skip("chromium is not installed: apt-get install chromium (make system-packages)")
    if not (EXTENSION / "node_modules" / "esbuild").is_dir():
        pytest.skip("vscode-extension/node_modules is missing: run `npm ci --prefix vscode-extension`")
    tmp = tmp_path_factory.mktemp("vscode-e2e")
    began = time.monotonic()
    vsix = _make_vsix()
    built = time.monotonic() - began
    ws = _workspace(tmp, _free_port())
    home = tmp / "home"
    home.mkdir()
    if ARTIFACTS.exists():
        shutil.rmtree(ARTIFACTS)
    ARTIFACTS.mkdir()
    trace, results = tmp / "dap-trace.jsonl", tmp / "results.json"
    token = uuid.uuid4().hex
    env = toolchain.node24_env()
    env.update({
        "DISTDEV_E2E_RUN": token, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local" / "share"), "XDG_CACHE_HOME": str(home / ".cache"),
        "PYTHONHASHSEED": "0",
        # No gallery is reachable: point it at a closed loopback port so nothing calls out.
        "EXTENSIONS_GALLERY": json.dumps({
            "serviceUrl": "http://127.0.0.1:9/gallery", "itemUrl": "http://127.0.0.1:9/item",
            "resourceUrlTemplate": "http://127.0.0.1:9/r/{publisher}/{name}/{version}/{path}"}),
        "E2E_ARGS": json.dumps({
            "toolchain": str(toolchain.toolchain_dir()), "vsix": str(vsix), "workspace": str(ws),
            "artifacts": str(ARTIFACTS), "trace": str(trace), "results": str(results),
            "port": _free_port(), "home": str(home), "deadlineMs": DRIVER_DEADLINE_S * 1000}),
    })
    process = subprocess.Popen([str(toolchain.node_bin()), str(HERE / "e2e.mjs")], cwd=tmp,
                               env=env, text=True, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, start_new_session=True)
    try:
        output, _ = process.communicate(timeout=HARD_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        _kill_run(process, token)
        output, _ = process.communicate()
        pytest.fail(f"the e2e driver ran over {HARD_TIMEOUT_S} s:\n{output}")
    finally:
        strays = _kill_run(process, token)
    print(output)
    print(f"VS Code e2e screenshots: {ARTIFACTS}")
    assert results.is_file(), f"the e2e driver wrote no results:\n{output}"
    outcome = json.loads(results.read_text())
    assert outcome.get("ok"), f"the e2e scenario failed:\n{output}\n{outcome.get('serverLog', '')}"
    # SIGKILL is delivered asynchronously: give the kernel a moment before calling it a leak.
    deadline = time.monotonic() + 5
    while _processes_with(token) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _processes_with(token), "processes of the e2e run are still alive"
    shutil.copy(trace, ARTIFACTS / "dap-trace.jsonl")
    return {"outcome": outcome, "trace": _trace(trace), "workspace": ws, "strays": strays,
            "output": output, "vsix": vsix, "vsix_build_s": built}


def test_vscode_f5_without_launch_json_debugs_the_application_of_the_active_file(
        e2e_run: dict[str, Any]) -> None:
    ws = e2e_run["workspace"]
    launches = [line["message"]["arguments"] for line in e2e_run["trace"]
                if line["direction"] == "toAdapter" and line["message"].get("command") == "launch"]
    assert len(launches) == 2  # F5, then a replay from the journal page
    # F5 was pressed in orders/orders.py: the provider debugs the application it belongs to.
    assert launches[0]["type"] == "distdev"
    assert Path(launches[0]["app"]) == ws / "app.py"
    breakpoints = [line["message"]["arguments"] for line in e2e_run["trace"]
                   if line["message"].get("command") == "setBreakpoints"
                   and line["direction"] == "toAdapter"
                   and line["message"]["arguments"]["source"].get("path", "").endswith("orders.py")]
    call = _marker(ws / "orders" / "orders.py", "orders-call-charge")
    assert [b["line"] for b in breakpoints[-1]["breakpoints"]] == [call]


def test_vscode_breakpoint_in_nested_service_stops_and_shows_in_call_stack(
        e2e_run: dict[str, Any]) -> None:
    ws, trace = e2e_run["workspace"], e2e_run["trace"]
    stops = [i for i, line in enumerate(trace) if line["direction"] == "fromAdapter"
             and line["message"].get("event") == "stopped"]
    assert stops, "no stopped event in the DAP trace"
    assert trace[stops[0]]["message"]["body"]["reason"] == "breakpoint"
    top = _stack_after(trace, stops[0])[0]
    assert top["name"] == "app/orders \u203a place"
    assert (Path(top["source"]["path"]), top["line"]) == (
        ws / "orders" / "orders.py", _marker(ws / "orders" / "orders.py", "orders-call-charge"))
    rows = e2e_run["outcome"]["steps"]["breakpoint"]["rows"]
    assert "place" in rows[0] and "orders.py" in rows[0], rows
    assert Path(e2e_run["outcome"]["screenshots"]["1-breakpoint-in-nested-service"]).is_file()


def test_vscode_step_into_a_proxy_call_puts_the_callee_on_top_of_the_call_stack(
        e2e_run: dict[str, Any]) -> None:
    ws, trace = e2e_run["workspace"], e2e_run["trace"]
    stops = [i for i, line in enumerate(trace) if line["direction"] == "fromAdapter"
             and line["message"].get("event") == "stopped"]
    assert len(stops) >= 2, "no stop after Step Into"
    assert trace[stops[1]]["message"]["body"]["reason"] == "step"
    frames = _stack_after(trace, stops[1])
    assert [f["name"] for f in frames[:2]] == ["app/billing \u203a charge", "app/orders \u203a place"]
    billing = ws / "billing" / "billing.py"
    assert (Path(frames[0]["source"]["path"]), frames[0]["line"]) == (
        billing, _marker(billing, "billing-charge-first"))
    rows = e2e_run["outcome"]["steps"]["stepInto"]["rows"]
    assert "charge" in rows[0] and "billing.py" in rows[0], rows
    assert "place" in rows[1], rows
    assert Path(e2e_run["outcome"]["screenshots"]["2-step-into-across-proxy"]).is_file()


def test_vscode_f12_on_a_proxy_call_opens_the_callee(e2e_run: dict[str, Any]) -> None:
    ws = e2e_run["workspace"]
    definition = e2e_run["outcome"]["steps"]["definition"]
    assert definition["activeTab"] == "billing.py"
    charge = next(n for n, line in enumerate((ws / "billing" / "billing.py").read_text()
                                             .splitlines(), 1) if line.startswith("def charge("))
    assert definition["line"] == charge
    assert Path(e2e_run["outcome"]["screenshots"]["3-go-to-definition-through-proxy"]).is_file()


def test_vscode_services_view_shows_the_tree_and_opens_a_service(e2e_run: dict[str, Any]) -> None:
    services = e2e_run["outcome"]["steps"]["services"]
    rows = services["rows"]
    for service, file in [("app", "app.py"), ("catalog", "catalog.py"),
                          ("billing", "billing/billing.py"), ("ledger", "billing/ledger.py"),
                          ("orders", "orders/orders.py")]:
        assert [r for r in rows if r.startswith(service) and file in r], (service, rows)
    assert not [r for r in rows if ".distdev" in r], "build output listed as an application"
    assert services["activeTab"] == "ledger.py"
    assert Path(e2e_run["outcome"]["screenshots"]["4-services-view"]).is_file()


def test_vscode_build_command_builds_the_application_of_the_active_file(
        e2e_run: dict[str, Any]) -> None:
    assert e2e_run["outcome"]["steps"]["build"]["message"].startswith("distdev: built app.py")
    manifest = json.loads((e2e_run["workspace"] / ".distdev/build/manifest.json").read_text())
    assert {s["id"] for s in manifest["services"]} == {
        "app", "app/catalog", "app/billing", "app/billing/ledger", "app/orders"}


def test_vscode_journal_page_replays_to_the_chosen_event(e2e_run: dict[str, Any]) -> None:
    ws, trace = e2e_run["workspace"], e2e_run["trace"]
    launches = [line for line in trace if line["direction"] == "toAdapter"
                and line["message"].get("command") == "launch"]
    replay = launches[-1]
    arguments = replay["message"]["arguments"]
    journal = ws / ".distdev/build/services/app/orders/journal.cbor"
    assert Path(arguments["journal"]) == journal
    # The page offers the events a replay can stop before; the run chose the second of them.
    first, second = [e.seq for e in distdev.read_journal(journal).events if is_boundary(e)][:2]
    chosen = e2e_run["outcome"]["steps"]["journal"]
    assert (chosen["first"], chosen["second"]) == (first, second)
    assert arguments["stopAtEvent"] == second
    session = [line for line in trace if line["session"] == replay["session"]]
    messages = [line["message"] for line in session]
    stops = [m["body"] for m in messages if m.get("event") == "stopped"]
    assert stops[0]["description"] == f"before event {second} of app/orders"
    # The toolbar's Step Back: the replay runs again and stops before the event before.
    back = next(i for i, m in enumerate(messages) if m.get("command") == "stepBack"
                and m.get("type") == "request")
    after = [m["body"] for m in messages[back:] if m.get("event") == "stopped"]
    assert after and (after[0]["reason"], after[0]["description"]) == (
        "step", f"before event {first} of app/orders")
    said = "".join(m["body"].get("output", "") for m in messages if m.get("event") == "output")
    assert f"app/orders stopped before event {second} (run 1)" in said
    assert f"app/orders stopped before event {first} (run 2)" in said
    for name in ("6-journal-events", "7-journal-replay-stopped", "7b-journal-step-back"):
        assert Path(e2e_run["outcome"]["screenshots"][name]).is_file()


def test_vscode_f5_without_distdev_names_the_interpreter_it_tried(e2e_run: dict[str, Any]) -> None:
    message = e2e_run["outcome"]["steps"]["noInterpreter"]["message"]
    bogus = e2e_run["workspace"] / "no-such-env" / "bin" / "python"
    assert f"Tried: {bogus} (the distdev.python setting): not found" in message
    assert 'change the "distdev.python" setting' in message
    assert Path(e2e_run["outcome"]["screenshots"]["8-no-interpreter"]).is_file()


def test_vscode_installs_the_vsix_that_make_vsix_writes(e2e_run: dict[str, Any]) -> None:
    vsix = e2e_run["vsix"]
    assert vsix == toolchain.vsix_path()
    assert vsix.name == f"distdev-{toolchain.extension_version()}.vsix"
    installed = e2e_run["outcome"]["installed"]
    assert installed["vsix"] == str(vsix)
    assert re.search(r"distdev-[\d.]+\.vsix.*successfully installed", installed["said"], re.I), installed
