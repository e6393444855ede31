"""The mypy plugin (``plugins = distdev.lsp.mypy_plugin``) run as users run it: plain mypy in a
subprocess, from the app's folder.

``fixtures/plugin_app/app.py`` marks each line that must fail with ``# @error: <code>``; the
errors mypy reports must be exactly those lines with those codes.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PLUGIN_APP = HERE / "fixtures" / "plugin_app"
SHOP = HERE.parent.parent / "examples" / "shop"
_ERROR = re.compile(r"^(?P<file>[^:\n]+):(?P<line>\d+): error: .*\[(?P<code>[a-z-]+)\]$", re.M)


def run_mypy(folder: Path, tmp: Path, *args: str, plugin: bool = True) -> tuple[int, str]:
    """``python -m mypy`` in ``folder`` with a generated config; its cache lives in ``tmp``."""
    config = tmp / "mypy.ini"
    lines = ["[mypy]", f"cache_dir = {tmp / 'cache'}", "show_error_codes = True"]
    if plugin:
        lines.append("plugins = distdev.lsp.mypy_plugin")
    config.write_text("\n".join(lines) + "\n")
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(config), *args],
        cwd=folder, capture_output=True, text=True, timeout=120)
    return done.returncode, done.stdout + done.stderr


def errors(output: str) -> set[tuple[str, int, str]]:
    return {(m["file"], int(m["line"]), m["code"]) for m in _ERROR.finditer(output)}


def marked(folder: Path, rel: str) -> set[tuple[str, int, str]]:
    found = set()
    for number, line in enumerate((folder / rel).read_text().splitlines(), start=1):
        _, _, comment = line.partition("#")
        match = re.search(r"@error:\s*([a-z-]+)", comment)
        if match:
            found.add((rel, number, match[1]))
    return found


def line_with(path: Path, text: str) -> int:
    lines = path.read_text().splitlines()
    return next(n for n, line in enumerate(lines, start=1) if text in line)


def test_plugin_reports_exactly_the_marked_lines(tmp_path: Path) -> None:
    code, output = run_mypy(PLUGIN_APP, tmp_path, "app.py")
    expected = marked(PLUGIN_APP, "app.py")
    assert len(expected) >= 5
    assert errors(output) == expected, output
    assert code == 1


def test_without_the_plugin_proxies_check_nothing(tmp_path: Path) -> None:
    code, output = run_mypy(PLUGIN_APP, tmp_path, "app.py", plugin=False)
    assert code == 0, output


def test_plugin_follows_a_callee_edit_through_the_cache(tmp_path: Path) -> None:
    app = tmp_path / "app"
    shutil.copytree(PLUGIN_APP, app)
    assert errors(run_mypy(app, tmp_path, "app.py")[1]) == marked(app, "app.py")
    # Warm cache; then only the callee changes: charge() now takes a str.
    billing = app / "billing.py"
    billing.write_text(billing.read_text()
                       .replace("def charge(user: str, cents: int)", "def charge(user: str, cents: str)")
                       .replace("_fee(cents)", "cents"))
    found = errors(run_mypy(app, tmp_path, "app.py")[1])
    now_ok = line_with(app / "app.py", 'billing.charge("ann", "1200")')
    now_bad = line_with(app / "app.py", 'billing.charge("ann", 1200)')
    assert ("app.py", now_ok, "arg-type") not in found
    assert ("app.py", now_bad, "arg-type") in found


def test_plugin_passes_on_the_shop(tmp_path: Path) -> None:
    code, output = run_mypy(SHOP, tmp_path, "app.py")
    assert code == 0, output


def test_plugin_passes_on_the_whole_shop_folder(tmp_path: Path) -> None:
    # `mypy .` names billing/billing.py "billing" (no __init__.py); the plugin must reuse it.
    code, output = run_mypy(SHOP, tmp_path, ".")
    assert code == 0, output
    assert "checked 7 source files" in output or "in 7 source files" in output
