"""Type checking: the package is clean under mypy, and a checker sees through a typed proxy."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from support import REPO

TYPED_APP = Path(__file__).parent / "typing" / "typed_app"


def _mypy(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--no-incremental", "--no-error-summary",
         "--show-error-codes", *args],
        cwd=cwd, capture_output=True, text=True, timeout=300,
    )


@pytest.mark.slow  # `make check` runs mypy over the package itself
def test_mypy_finds_no_errors_in_the_package() -> None:
    result = _mypy("-p", "distdev")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_checks_calls_through_a_typed_proxy() -> None:
    expected = {
        (number, match.group(1))
        for number, line in enumerate((TYPED_APP / "app.py").read_text().splitlines(), 1)
        if (match := re.search(r"# @error: ([\w-]+)", line))
    }
    result = _mypy("app.py", cwd=TYPED_APP)
    found = {
        (int(m.group(1)), m.group(2))
        for m in re.finditer(r"^app\.py:(\d+): error: .*\[([\w-]+)\]$", result.stdout, re.M)
    }
    assert found == expected, result.stdout


PYRIGHT = REPO / "tests" / "typing" / "pyright" / "node_modules" / ".bin" / "pyright"


@pytest.mark.slow  # `make check` runs pyright over the package itself
def test_pyright_finds_no_errors_in_the_package() -> None:
    if not PYRIGHT.is_file():
        pytest.skip("pyright is not installed: npm ci --prefix tests/typing/pyright")
    result = subprocess.run([str(PYRIGHT)], cwd=REPO, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 errors" in result.stdout
