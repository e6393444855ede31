"""The rules of ``distdev.rules``, as the language server and the mypy plugin apply them.

Exports (``rules.export_names``): the runtime calls a decorated public function through a proxy,
the language server completes it and checks calls to it, the mypy plugin types it; a private
decorated function and an ``@effect`` are exports of none of them. Service paths
(``rules.resolve_service_path``): both read tests/fixtures/service_paths.json's cases as the
rule does (tests/test_rules.py checks the rule itself against them).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from lsprotocol import types

from distdev import ExportError
from distdev.lsp import _checks, mypy_plugin
from distdev.lsp._syntax import parse_file
from distdev.testing import load_app

PATH_CASES: list[dict[str, str]] = json.loads(
    (Path(__file__).parents[1] / "fixtures" / "service_paths.json").read_text())["cases"]

TOOLS = '''"""Exports made with decorators; a private cached helper and an effect, which are not."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from distdev import effect

P = ParamSpec("P")
R = TypeVar("R")


def _logged(fn: Callable[P, R]) -> Callable[P, R]:
    """A plain decorator, made the way functools.wraps makes them."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        return fn(*args, **kwargs)

    return wrapper


def _counted(fn: Callable[P, R]) -> Callable[P, R]:
    """A decorator whose wrapper keeps nothing of the function (no functools.wraps)."""

    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        return fn(*args, **kwargs)

    return wrapper


@_counted
def greet(name: str) -> str:
    return "hello " + name


@functools.lru_cache
def square(n: int) -> int:
    return n * n


@_logged
def shout(text: str) -> str:
    return text.upper()


@functools.lru_cache
def _secret(n: int) -> int:
    return n


@effect
def fetch(url: str) -> str:
    return url
'''

# `# @name` marks a line for the language server's side, `# @error: code` for mypy's.
APP = '''"""Calls tools' exports, and what tools does not export."""

from __future__ import annotations

from distdev import import_service

tools = import_service("./tools.py")


def calls() -> None:
    tools.square(3)  # @square
    tools.shout("hi")  # @shout
    tools.greet("ann")  # @greet
    tools.square("3")  # @square-str @error: arg-type
    tools.shout(3)  # @shout-int @error: arg-type
    tools._secret(1)  # @secret @error: service-export
    tools.fetch("x")  # @effect @error: service-export
'''

EXPORTS = ["greet", "shout", "square"]


@pytest.mark.asyncio(loop_scope="session")
async def test_decorated_exports_agree_in_runtime_server_and_plugin(written, tmp_path: Path) -> None:
    (tmp_path / "tools.py").write_text(TOOLS)
    (tmp_path / "app.py").write_text(APP)
    assert _runtime_exports(tmp_path / "app.py", tmp_path / "run") == EXPORTS
    await written.open("app.py")
    codes = {marker: written.codes_at("app.py", marker)
             for marker in ["square", "shout", "greet", "square-str", "shout-int", "secret",
                            "effect"]}
    assert codes == {"square": [], "shout": [], "greet": [], "square-str": ["argument-type"],
                     "shout-int": ["argument-type"], "secret": ["not-exported"],
                     "effect": ["not-exported"]}
    assert await _completed_exports(written) == EXPORTS
    await written.close("app.py")
    assert _mypy_errors(tmp_path, tmp_path / "mypy") == _marked_errors(APP)


def _runtime_exports(app: Path, out: Path) -> list[str]:
    """The exports of app/tools that the runtime calls; what it refuses is checked here too."""
    live = load_app(app, out=out / "build", state=out / "state")
    try:
        tools = live.service("app/tools")
        assert (tools.square(4), tools.shout("hi"), tools.greet("ann")) == (16, "HI", "hello ann")
        for refused in ("_secret", "fetch"):
            with pytest.raises(ExportError):
                getattr(tools, refused)
        return sorted(live.services["app/tools"].exports())
    finally:
        live.close()


async def _completed_exports(ws) -> list[str]:
    """What the language server completes when ``tools.`` is typed in the open app.py (a
    syntax error: the server answers from its last good reading)."""
    text = APP + "\n\ndef extra() -> None:\n    tools.\n"
    await ws.change("app.py", text, 2)
    result = await ws.client.text_document_completion_async(types.CompletionParams(
        types.TextDocumentIdentifier(ws.uri("app.py")),
        types.Position(len(text.splitlines()) - 1, len("    tools."))))
    await ws.change("app.py", APP, 3)
    assert result is not None
    items = result.items if isinstance(result, types.CompletionList) else result
    return sorted(item.label for item in items)


def _mypy_errors(folder: Path, tmp: Path) -> set[tuple[int, str]]:
    """(line, code) of each error plain mypy with the plugin reports on app.py."""
    tmp.mkdir()
    config = tmp / "mypy.ini"
    config.write_text(f"[mypy]\ncache_dir = {tmp / 'cache'}\nshow_error_codes = True\n"
                      "plugins = distdev.lsp.mypy_plugin\n")
    done = subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(config), "app.py"],
                          cwd=folder, capture_output=True, text=True, timeout=120)
    found = re.findall(r"^app\.py:(\d+): error: .*\[([a-z-]+)\]$", done.stdout, re.M)
    assert found, done.stdout + done.stderr
    return {(int(line), code) for line, code in found}


def _marked_errors(source: str) -> set[tuple[int, str]]:
    return {(number, match[1]) for number, line in enumerate(source.splitlines(), start=1)
            if (match := re.search(r"@error:\s*([a-z-]+)", line))}


@pytest.mark.parametrize("case", PATH_CASES, ids=[case["why"] for case in PATH_CASES])
def test_service_paths_as_the_server_and_plugin_read_them(case: dict[str, str], tmp_path: Path
                                                          ) -> None:
    app, importer, literal = tmp_path / "app", case["importer"], case["literal"]
    source = case.get("source", f"svc = import_service({literal!r})")
    (binding,) = parse_file(app / importer, source).spawns
    assert binding.literal == literal
    leaves = _checks._leaves_folder(app / importer, literal, app)  # service-outside-app
    plugin_target = mypy_plugin._target(str(app / importer), literal)
    if "expect" in case:
        assert (binding.target, leaves, plugin_target) == (app / case["expect"], False,
                                                           (app / case["expect"]).resolve())
    elif case["error"] == "outside":
        assert leaves  # the file is named; which application it leaves is checked per root
    else:
        assert (binding.target, plugin_target) == (None, None)  # bad-service-path
