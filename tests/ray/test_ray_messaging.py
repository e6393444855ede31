"""Queues and topics on the Ray engine: each served by an actor (its store in the shared state
folder) that delivers to the consumers' actors as itself; every message handled once by the
queue's consumer and by each subscriber of the topic in publish order."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from support import run_distdev
from support.engines import build, wait_until

from distdev.engines import Connection
from distdev.engines.ray._layout import PENDING, AddressBook, RayDeployment

APP = Path(__file__).resolve().parent.parent / "apps" / "messaging"


def test_a_queue_and_a_topic_deliver_on_ray(ray_address: str, tmp_path: Path) -> None:
    source = tmp_path / "messaging"
    shutil.copytree(APP, source)
    build(source / "app.py", tmp_path / "out")
    state = (tmp_path / "state").resolve()
    result = run_distdev("deploy", tmp_path / "out", "--engine", "ray", "--address",
                         ray_address, "--state", state, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    deployment = RayDeployment.load(state)

    def call(service_id: str, export: str, *args: Any) -> Any:
        address = AddressBook(state, deployment.services)[service_id]
        if address == PENDING:
            return None
        connection = Connection(address, deployment.secret(), "test-client", 60.0)
        try:
            return connection.call("test-client", f"test-{os.urandom(8).hex()}", None, export,
                                   list(args), {})
        finally:
            connection.close()

    try:
        assert call("app", "produce", 1, 100) == 100
        expected = list(range(1, 101))
        for service_id in ("app/worker", "app/audit", "app/mailer"):
            wait_until(lambda s=service_id: len(call(s, "seen") or []) >= 100, 120,  # type: ignore[misc]
                       f"100 messages at {service_id}")
        assert sorted(call("app/worker", "seen")) == expected
        assert call("app/audit", "seen") == call("app/mailer", "seen") == expected
        status = json.loads(run_distdev("status", "--engine", "ray", "--state", state,
                                        "--json").stdout)
        kinds = {row["id"]: row["kind"] for row in status["services"]}
        assert (kinds["app/jobs"], kinds["app/events"]) == ("queue", "topic")
    finally:
        down = run_distdev("down", "--engine", "ray", "--state", state, timeout=120)
        assert down.returncode == 0, down.stdout + down.stderr
