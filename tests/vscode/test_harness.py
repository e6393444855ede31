"""The e2e harness's own test: its waits hold until the page and the DAP trace show what a step
checks (harness.test.mjs, under Node 24, against headless Chromium)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from support import vscode_toolchain

HERE = Path(__file__).resolve().parent
CHROMIUM = Path("/usr/bin/chromium")
toolchain = vscode_toolchain()


def test_vscode_harness_waits_for_the_page_and_the_trace() -> None:
    if not toolchain.is_installed():
        pytest.skip(f"the VS Code e2e toolchain is not installed in {toolchain.toolchain_dir()}: "
                    "run `make vscode-e2e-deps`")
    if not CHROMIUM.is_file():
        pytest.skip("chromium is not installed: apt-get install chromium (make system-packages)")
    env = dict(toolchain.node24_env(), HARNESS_TOOLCHAIN=str(toolchain.toolchain_dir()))
    command = [str(toolchain.node_bin()), "--test", "--test-reporter=tap",
               str(HERE / "harness.test.mjs")]
    result = subprocess.run(command,
                            cwd=HERE, env=env, capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    assert "# pass 6" in result.stdout and "# fail 0" in result.stdout, result.stdout
