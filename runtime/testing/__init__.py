"""Helpers for testing distdev applications, and a pytest plugin (fixture ``distdev_app``).

``load_app`` builds an application in this process and keeps its services live, so a test can
call them and compare their state; ``replay`` restores one service from its journal::

    app = load_app("shop/app.py")
    app.service("app").place_order("ann", "book", 1200)
    restored = replay(app.journal("app/orders"))
    assert restored.state() == app.state("app/orders")
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ..build import App
from ..replayer import ReplayedService, replay

__all__ = ["load_app", "replay", "App", "ReplayedService"]


def load_app(
    path: str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    state: str | os.PathLike[str] | None = None,
) -> App:
    """Build the application at ``path`` in this process and keep its services live.

    The build output goes to ``out`` (a new temporary folder by default) and runtime journals
    to ``state`` (``out``'s sibling "state" by default). Close the App when done.
    """
    if out is None:
        base = Path(tempfile.mkdtemp(prefix="distdev-test-"))
        out, state = base / "build", base / "state" if state is None else state
    return App(path, out=out, state=state).start()
