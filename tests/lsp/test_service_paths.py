"""Diagnostics for what ``distdev build`` refuses about ``import_service`` itself: sibling ids
that clash, and service files outside the application folder. Each message is checked against
the error the real build prints for the same fixture."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.asyncio(loop_scope="session")

CLASH = "clash/app.py"
NESTED = "outside/app/sub/svc.py"


def build_error(app: Path, out: Path) -> str:
    """What ``distdev build`` prints when it refuses ``app``."""
    done = subprocess.run([sys.executable, "-m", "distdev", "build", "-o", str(out), app.name],
                          cwd=app.parent, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0, done.stdout
    return done.stdout + done.stderr


def message_at(ws, rel: str, marker: str) -> str:
    line = ws.line_of(rel, marker)
    (message,) = [d.message for d in ws.diagnostics(rel) if d.range.start.line == line]
    return message


@pytest.mark.parametrize(("marker", "codes"), [
    ("first", []),
    ("clash", ["service-id-clash"]),
    ("renamed", []),
    ("arm-a", []),
    ("arm-b", []),  # the other arm of one `if`: never both created
    ("bad-name", ["bad-service-name"]),
])
async def test_service_paths_sibling_ids(apps, marker: str, codes: list[str]) -> None:
    await apps.open(CLASH)
    assert apps.codes_at(CLASH, marker) == codes


async def test_service_paths_clash_says_what_the_build_says(apps, tmp_path: Path) -> None:
    await apps.open(CLASH)
    message = message_at(apps, CLASH, "clash")
    built = build_error(apps.root / CLASH, tmp_path / "out")
    assert "ServiceIdClashError" in built and "ServiceIdClashError" in message
    fix = "import_service('./right/worker.py', name='worker_2')"
    assert fix in built and fix in message
    assert f"line {apps.line_of(CLASH, 'first') + 1}" in message


async def test_service_paths_clash_range_is_the_path_literal(apps) -> None:
    await apps.open(CLASH)
    line = apps.line_of(CLASH, "clash")
    (diag,) = [d for d in apps.diagnostics(CLASH) if d.code == "service-id-clash"]
    start = apps.pos(CLASH, "clash", '"./right/worker.py"')
    assert (diag.range.start.line, diag.range.start.character) == (line, start.character)
    assert diag.range.end.character == start.character + len('"./right/worker.py"')


@pytest.mark.parametrize(("marker", "codes"), [
    ("inside-up", []),  # `..` that stays inside the application folder
    ("outside", ["service-outside-app"]),
])
async def test_service_paths_outside_the_application(apps, marker: str, codes: list[str]) -> None:
    await apps.open(NESTED)
    assert apps.codes_at(NESTED, marker) == codes


async def test_service_paths_outside_says_what_the_build_says(apps, tmp_path: Path) -> None:
    await apps.open(NESTED)
    message = message_at(apps, NESTED, "outside")
    folder = apps.root / "outside" / "app"
    built = build_error(folder / "app.py", tmp_path / "out")
    assert f"'../../shared.py', which is outside the application folder {folder}" in built
    assert f"outside the application folder {folder}" in message
    assert "ServiceLoadError" in built and "ServiceLoadError" in message
    assert "keep every service file under the root service's folder" in message
    # The file exists: the build refuses it for where it is, so the server says only that.
    assert (apps.root / "outside" / "shared.py").is_file()


async def test_service_paths_fixed_in_memory(apps) -> None:
    text = (apps.root / CLASH).read_text()
    await apps.open(CLASH)
    await apps.change(CLASH, text.replace('"./right/worker.py")', '"./right/worker.py", '
                                          'name="right")'), 2)
    assert apps.codes_at(CLASH, "clash") == []
    await apps.change(CLASH, text, 3)
    assert apps.codes_at(CLASH, "clash") == ["service-id-clash"]
