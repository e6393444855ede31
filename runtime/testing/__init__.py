"""Helpers for testing distdev applications, and a pytest plugin (fixture ``distdev_app``).

``load_app`` builds an application in this process and keeps its services live, so a test can
call them and compare their state; ``replay`` restores one service from its journal::

    app = load_app("shop/app.py")
    app.service("app").place_order("ann", "book", 1200)
    restored = replay(app.journal("app/orders"))
    assert restored.state() == app.state("app/orders")

``journal_cases`` and ``assert_compatible`` make a folder of journals (copied from a running
deployment, kept as fixtures) a compatibility gate in a test suite::

    @pytest.mark.parametrize("journal", journal_cases("tests/journals"))
    def test_still_replays(journal):
        assert_compatible(journal, source="shop")
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from ..build import App
from ..replayer import ReplayedService, check_journal, journals_in, replay

__all__ = ["load_app", "replay", "App", "ReplayedService", "journal_cases", "assert_compatible"]


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


def journal_cases(*folders: str | os.PathLike[str]) -> list[Any]:
    """One pytest parameter per journal under ``folders`` (files are taken as they are), with
    the journal's path as its id."""
    import pytest

    return [pytest.param(journal, id=str(journal)) for journal in journals_in(folders)]


def assert_compatible(journal: str | os.PathLike[str],
                      source: str | os.PathLike[str] | None = None) -> None:
    """Fail, saying where, unless ``source`` (the journal's own code by default) replays
    ``journal`` exactly. A journal recorded under another ``PYTHONHASHSEED`` than the test
    process's is checked by ``distdev check`` in a process of its own."""
    from ..cli._check import check_elsewhere

    verdict = check_journal(journal, source)
    if verdict.result == "unreadable" and "PYTHONHASHSEED" in verdict.message:
        verdict = check_elsewhere(journal, source)
    if verdict.result != "compatible":
        where = (f" (the journal's code was at {verdict.journal_location})"
                 if verdict.journal_location else "")
        raise AssertionError(f"{journal} is {verdict.result}: {verdict.message}{where}")
