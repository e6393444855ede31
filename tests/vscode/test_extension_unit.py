"""The VS Code extension's unit tests (mocha, vscode-extension/test/) under Node 20 and Node 24,
and the launch schema it contributes checked against the debug adapter's own validation."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from support import vscode_toolchain

from distdev.dap_adapter._config import LaunchConfig, parse_launch

HERE = Path(__file__).resolve().parent
EXTENSION = HERE.parent.parent / "vscode-extension"
MANIFEST = json.loads((EXTENSION / "package.json").read_text())


def _nodes() -> list[Any]:
    system = shutil.which("node")
    node24 = vscode_toolchain().node_bin()
    return [
        pytest.param(system, id="machine-node"),
        pytest.param(str(node24) if node24.is_file() else None, id="node24"),
    ]


@pytest.fixture(scope="module")
def compiled() -> Path:
    """The extension and its tests compiled by tsc (which also type-checks both)."""
    if not (EXTENSION / "node_modules" / "typescript").is_dir():
        pytest.skip("vscode-extension/node_modules is missing: run `npm ci --prefix vscode-extension`")
    node = shutil.which("node")
    assert node is not None
    result = subprocess.run([node, "node_modules/typescript/bin/tsc", "-p", "tsconfig.test.json"],
                            cwd=EXTENSION, capture_output=True, text=True, timeout=180, check=False)
    assert result.returncode == 0, f"tsc failed:\n{result.stdout}\n{result.stderr}"
    return EXTENSION / "out" / "test"


@pytest.mark.parametrize("node", _nodes())
def test_extension_unit_tests_pass(compiled: Path, node: str | None) -> None:
    if node is None:
        pytest.skip("this Node is not installed (node24 comes with `make vscode-e2e-deps`)")
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=False).stdout.strip()
    env = dict(os.environ, DISTDEV_PYTHON=sys.executable)
    result = subprocess.run(
        [node, "node_modules/mocha/bin/mocha.js", "--reporter", "dot", "out/test/**/*.test.js"],
        cwd=EXTENSION, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, f"mocha under node {version} failed:\n{result.stdout}\n{result.stderr}"
    passing = re.search(r"(\d+) passing", result.stdout)
    assert passing and int(passing.group(1)) >= 20, result.stdout


def _debugger() -> dict[str, Any]:
    (found,) = [d for d in MANIFEST["contributes"]["debuggers"] if d["type"] == "distdev"]
    return found


def test_extension_launch_schema_names_only_options_the_adapter_accepts() -> None:
    schema = set(_debugger()["configurationAttributes"]["launch"]["properties"])
    adapter = set(LaunchConfig.__struct_encode_fields__)
    assert schema <= adapter, f"options the adapter does not know: {schema - adapter}"
    assert {"app", "journal", "stopAtEvent", "stopOnEntry", "env", "cwd", "port"} <= schema


def test_extension_snippets_are_configurations_the_adapter_accepts() -> None:
    debugger = _debugger()
    bodies = [*debugger["initialConfigurations"],
              *(s["body"] for s in debugger["configurationSnippets"])]
    for body in bodies:
        config = parse_launch({key: _as_vscode_sends(value) for key, value in body.items()})
        assert (config.app is None) != (config.journal is None), body


def _as_vscode_sends(value: Any) -> Any:
    """A snippet value as it reaches the adapter: `^"..."` unquoted, placeholders filled in,
    variables substituted."""
    if not isinstance(value, str):
        return value
    if value.startswith('^"') and value.endswith('"'):
        value = value[2:-1]
    value = value.replace("\\${workspaceFolder}", "/ws").replace("${workspaceFolder}", "/ws")
    return re.sub(r"\$\{\d+:([^}]*)\}", r"\1", value).replace("${file}", "/ws/app.py")
