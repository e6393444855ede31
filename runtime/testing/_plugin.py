"""The pytest plugin: a ``distdev_app`` fixture that loads applications and closes them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .._version import recorded_hash_seed
from ..build import App
from . import load_app


def pytest_report_header() -> str:
    seed = recorded_hash_seed()
    return f"distdev: PYTHONHASHSEED={seed if seed is not None else 'random (not pinned)'}"


@pytest.fixture
def distdev_app(tmp_path: Path) -> Iterator[Callable[..., App]]:
    """Load an application: ``app = distdev_app("path/app.py")``; closed after the test."""
    apps: list[App] = []

    def load(path: str | Path) -> App:
        index = len(apps)
        app = load_app(path, out=tmp_path / f"app{index}" / "build",
                       state=tmp_path / f"app{index}" / "state")
        apps.append(app)
        return app

    yield load
    for app in apps:
        app.close()
