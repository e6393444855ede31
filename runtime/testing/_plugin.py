"""The pytest plugin: a ``distdev_app`` fixture that loads applications and closes them."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from _pytest.capture import CaptureManager

from .._version import PINNED_HASH_SEED, recorded_hash_seed
from ..build import App
from . import load_app


def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    """Run the tests under a pinned PYTHONHASHSEED (journals record it; a random one would make
    every replay's set order differ): when none is set, pytest starts again under
    ``PINNED_HASH_SEED``, once, with the same command line."""
    if recorded_hash_seed() is not None or os.environ.get(_REEXECUTED):
        return
    env = dict(os.environ, PYTHONHASHSEED=PINNED_HASH_SEED, **{_REEXECUTED: "1"})
    # pytest already captures file descriptors 1 and 2 (into temporary files): give the new
    # process the real ones, or everything it prints is lost.
    capture = early_config.pluginmanager.getplugin("capturemanager")
    if isinstance(capture, CaptureManager):
        capture.stop_global_capturing()
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)


_REEXECUTED = "DISTDEV_PYTEST_PINNED"


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
