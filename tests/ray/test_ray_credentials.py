"""Per-service credentials under the Ray engine: each actor reads its own key file from the
shared state folder and confines itself before it serves, so a service's code finds no key that
lets it call as another, and a proxy handed over at runtime lets it call nothing. The same
checks as the local engine's (tests/support/credentials.py), on the session's Ray instance."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import run_distdev
from support.credentials import (
    check_a_proxy_handed_over_at_runtime_calls_nothing,
    check_key_files,
    check_spy_finds_no_key_to_call_as_the_root,
    credentials_build,
)
from support.engines import wait_until

from distdev.engines import Connection
from distdev.engines._confine import landlock_abi
from distdev.engines.ray._layout import PENDING, ActorInfo, AddressBook, RayDeployment

needs_landlock = pytest.mark.skipif(
    landlock_abi() is None, reason="this kernel has no Landlock: actors run unconfined (their "
    "logs warn), and can read the deployment's key material")


class RayBank:
    """The credentials app deployed on Ray, as the operator sees it."""

    def __init__(self, out: Path, state: Path) -> None:
        self.out = out
        self.state = state
        self.deployment = RayDeployment.load(state)
        self.secret = self.deployment.secret()
        self.pids = {ActorInfo.load(state, sid).pid  # type: ignore[union-attr]
                     for sid in self.deployment.services}

    def address(self, service_id: str) -> str:
        address = AddressBook(self.state, self.deployment.services)[service_id]
        assert address != PENDING, f"{service_id} is not serving"
        return address

    def connect(self, service_id: str, caller: str = "test-client",
                timeout: float = 60.0) -> Connection:
        return Connection(self.address(service_id), self.secret, caller, timeout,
                          service=service_id)

    def log(self, service_id: str) -> str:
        path = self.deployment.log(service_id)
        return path.read_text() if path.exists() else ""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return False


@contextlib.contextmanager
def deployed(out: Path, state: Path, address: str) -> Iterator[RayBank]:
    engine = ["--engine", "ray", "--state", str(state)]
    result = run_distdev("deploy", out, "--address", address, *engine, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    bank = RayBank(out, state)
    try:
        yield bank
    finally:
        result = run_distdev("down", *engine)
        assert result.returncode == 0, result.stdout + result.stderr
        wait_until(lambda: not any(_alive(p) for p in bank.pids), 30, "the actors to exit")


@pytest.fixture(scope="module")
def bank(ray_address: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RayBank]:
    work = tmp_path_factory.mktemp("credentials")
    with deployed(credentials_build(work), (work / "state").resolve(), ray_address) as bank:
        yield bank


def test_each_actor_holds_the_keys_of_its_own_edges_only(bank: RayBank) -> None:
    check_key_files(bank.state)


@needs_landlock
def test_a_service_finds_no_key_that_lets_it_call_as_another(bank: RayBank) -> None:
    for service_id in bank.deployment.services:
        assert "confined (Landlock" in bank.log(service_id), bank.log(service_id)
    check_spy_finds_no_key_to_call_as_the_root(bank)


def test_a_proxy_handed_over_at_runtime_is_no_capability(bank: RayBank) -> None:
    check_a_proxy_handed_over_at_runtime_calls_nothing(bank)


def test_distdev_call_reaches_a_service_the_operator_names(bank: RayBank) -> None:
    result = run_distdev("call", "--engine", "ray", "--state", bank.state, "app/bank.balance")
    assert result.returncode == 0, result.stderr
