"""One real local Ray instance per test session, inside a network namespace that has only
loopback.

Ray listens on every interface, and binds an agent to the machine's non-loopback address even
when told 127.0.0.1; these tests may send traffic to loopback only. ``make test`` runs the suite
in a fresh network namespace (``unshare -n``, or ``unshare -rn`` for a non-root user) with only
``lo`` up. Run outside one, the Ray tests are skipped with a message that says so.

The instance is started exactly as ``distdev deploy`` without ``--address`` starts one (the
``distdev.engines.ray._head`` keeper, usage stats off, no dashboard, two CPUs, actors at zero), with its
temporary folder inside the session's test folder; every deployment of the session is then made
with ``--address``. Teardown checks that no Ray process of the instance is left.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from distdev.engines.ray import _cluster as cluster

ISOLATION_HELP = (
    "the Ray tests need a network namespace whose only interface is loopback (Ray listens "
    "beyond it): run `make test`, or `unshare -rn sh -c 'ip link set lo up && exec "
    ".venv/bin/python -m pytest tests/ray'`"
)


def loopback_only() -> str | None:
    """None if this process's network namespace has only an up ``lo``; else why not."""
    names = [name for _, name in socket.if_nameindex()]
    if names != ["lo"]:
        return f"this network namespace has the interfaces {names}, not only lo"
    with socket.socket() as server, socket.socket() as client:
        try:
            server.bind(("127.0.0.1", 0))
            server.listen()
            client.connect(server.getsockname())
        except OSError as exc:
            return f"loopback is not up here ({exc})"
    return None


def ray_processes(marker: str) -> list[int]:
    """Pids of live processes whose command line mentions ``marker``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker.encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


@pytest.fixture(scope="session")
def ray_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    why = loopback_only()
    if why is not None:
        pytest.skip(f"{why}; {ISOLATION_HELP}")
    cluster.require_ray()
    base = tmp_path_factory.getbasetemp()
    assert os.environ.get("RAY_USAGE_STATS_ENABLED") == "0"
    address, keeper, temp = cluster.start_local(base, base / "ray-head.log")
    assert temp.is_relative_to(base), f"Ray's temporary folder {temp} is outside {base}"
    try:
        yield address
    finally:
        cluster.stop_local(keeper)
        deadline = time.monotonic() + 30
        while ray_processes(str(temp)) and time.monotonic() < deadline:
            time.sleep(0.2)
    assert ray_processes(str(temp)) == [], "Ray processes left after the session"
