"""The adapter driven by Microsoft's DebugClient (``@vscode/debugadapter-testsupport``), run by
node: the JavaScript tests are in tests/dap/node (``npm ci --prefix tests/dap/node`` installs
their dependencies) — a nested step session on examples/shop (``shop.test.mjs``), and what
observing never acting, setVariable, Reverse Continue mid-replay and function breakpoints look
like to a second client (``observing.test.mjs``)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

NODE_TESTS = Path(__file__).resolve().parent / "node"
TIMEOUT = 150  # seconds, for every file's sessions on a loaded machine


@pytest.mark.slow
def test_debugclient_drives_the_adapter_through_every_node_test() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the DebugClient test needs Node.js")
    if not (NODE_TESTS / "node_modules" / "@vscode" / "debugadapter-testsupport").is_dir():
        pytest.skip("tests/dap/node/node_modules is missing: run `npm ci --prefix tests/dap/node`")
    # Files, not the folder: newer node versions take `--test` arguments as glob patterns.
    files = sorted(str(p) for p in NODE_TESTS.glob("*.test.mjs"))
    assert files, f"no *.test.mjs in {NODE_TESTS}"
    env = dict(os.environ, DISTDEV_PYTHON=sys.executable, PYTHONHASHSEED="0")
    # Its own process group, so a run over time ends with everything node started.
    process = subprocess.Popen([node, "--test", *files], cwd=NODE_TESTS, env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               start_new_session=True)
    try:
        output, _ = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        pytest.fail(f"node --test ran over {TIMEOUT} s:\n{output}")
    assert process.returncode == 0, f"node --test failed ({process.returncode}):\n{output}"
