"""distdev's changes to pydevd apply only to the debugpy versions they were written for, and
outside them the debuggee says so and runs without them."""

from __future__ import annotations

import re
import sys
import tomllib
import types
from pathlib import Path

import pytest

from distdev.dap_adapter import _pydevd

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def test_pydevd_tested_range_is_the_debugpy_pyproject_requires() -> None:
    dependencies = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    (required,) = [d for d in dependencies if re.match(r"debugpy\b", d)]
    low, high = (".".join(map(str, bound)) for bound in _pydevd.TESTED)
    assert required.replace(" ", "") == f"debugpy>={low},<{high}"


@pytest.mark.parametrize("version, tested", [
    ("1.8.22", True), ("1.8.30", True), ("1.8.22+dev", True),
    ("1.8.21", False), ("1.9.0", False), ("1.9", False), ("2.0.0", False), ("unknown", False),
])
def test_pydevd_in_tested_range(version: str, tested: bool) -> None:
    assert _pydevd.in_tested_range(version) is tested


PATCHES = ("set_nodelay", "answer_pipelined_requests", "observe_evaluations",
           "observe_breakpoint_expressions")


def fake_debugpy(monkeypatch: pytest.MonkeyPatch, version: str) -> list[str]:
    """A debugpy of ``version`` in this process, and the patches, which only note their call."""
    monkeypatch.setitem(sys.modules, "debugpy", types.SimpleNamespace(__version__=version))
    called: list[str] = []
    for name in PATCHES:
        monkeypatch.setattr(_pydevd, name, lambda name=name: called.append(name) or True)
    return called


def test_pydevd_apply_outside_the_tested_range_patches_nothing_and_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    called = fake_debugpy(monkeypatch, "1.9.1")
    said: list[str] = []
    assert _pydevd.apply(said.append) == []
    assert called == []
    (line,) = said
    assert line.startswith("distdev: debugpy 1.9.1 is not a version")
    assert "pip install 'debugpy>=1.8.22,<1.9'" in line


def test_pydevd_apply_in_the_tested_range_applies_every_patch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    called = fake_debugpy(monkeypatch, "1.8.22")
    said: list[str] = []
    applied = _pydevd.apply(said.append)
    assert applied == called == list(PATCHES)
    assert said == []


def test_pydevd_apply_outside_a_debugger_is_silent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "debugpy", None)  # import debugpy fails
    said: list[str] = []
    assert _pydevd.apply(said.append) == []
    assert said == []


def test_pydevd_patches_outside_a_debugger_do_nothing() -> None:
    """Not under debugpy (pydevd has no debugger): each patch declines, none raises."""
    assert _pydevd.set_nodelay() is False
    assert _pydevd.answer_pipelined_requests() is False
