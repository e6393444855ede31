"""Fixtures for the debug adapter tests: a fresh working folder per test, adapters closed."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from dap.dap_client import DapClient


@pytest.fixture
def adapter(tmp_path: Path) -> Iterator[Callable[..., DapClient]]:
    """Start ``python -m distdev.dap_adapter`` clients in ``tmp_path``; all closed at the end."""
    started: list[DapClient] = []

    def start(**env: str) -> DapClient:
        client = DapClient(tmp_path, env=env or None)
        started.append(client)
        return client

    yield start
    for client in started:
        client.close()
