"""Fixtures shared by the tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from support import write_files


@pytest.fixture
def app_files(tmp_path: Path) -> Callable[[dict[str, str]], Path]:
    """Write an application into ``tmp_path/app``; returns that folder."""

    def write(files: dict[str, str]) -> Path:
        return write_files(tmp_path / "app", files)

    return write
