"""The Ray engine's files in the state folder.

``STATE/ray-deployment.json`` (``RayDeployment``) is written by ``distdev deploy`` and read by
the actors and the CLI. ``STATE/<id>/ray-actor.json`` (``ActorInfo``) is written by each actor
every time it starts: where it listens now, its pid and node, how many times it started.
Callers find a restarted service there (``AddressBook``). The state folder must be one path
that every node of the cluster reaches (a shared file system): it also holds the journals, and
each service's key file (``STATE/keys``), which its actor reads when it starts.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ...errors import DistdevError
from .._keys import KEYS_FOLDER, key_file

DEPLOYMENT_FILE = "ray-deployment.json"
ACTOR_FILE = "ray-actor.json"
SECRET_FILE = "secret"
PENDING = "pending:"
"""The address of a service that has not (re)started yet: callers wait and look again."""


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)


@dataclasses.dataclass
class RayDeployment:
    out: str
    state: str
    address: str
    namespace: str
    hash_seed: str | None
    root: str
    services: list[str]
    exports: dict[str, list[str]]
    http: int | None  # the root's ingress port (0: any free one), None: no ingress
    durable: bool = True
    head_pid: int | None = None  # the keeper of a local Ray instance this deployment started
    temp_dir: str | None = None
    running: bool = False
    build_secret: str | None = None  # OUT/secret, where the build wrote it
    functions: dict[str, int] = dataclasses.field(default_factory=dict)
    """The services that are functions (``host.function``), each with its ``max_instances``:
    each an actor of its dispatcher that runs up to that many instance actors."""

    @property
    def path(self) -> Path:
        return Path(self.state) / DEPLOYMENT_FILE

    def journal(self, service_id: str) -> Path:
        return Path(self.state) / service_id / "journal.cbor"

    def secret(self) -> bytes:
        """The build's master secret, copied for the operator (``call``, ``status``)."""
        return (Path(self.state) / SECRET_FILE).read_text().strip().encode()

    def key_file(self, service_id: str) -> Path:
        return key_file(Path(self.state), service_id)

    def key_material(self) -> list[Path]:
        """Everything an actor must not read: the secret (both copies), the key files."""
        build = [Path(self.build_secret)] if self.build_secret else []
        return [Path(self.state) / SECRET_FILE, Path(self.state) / KEYS_FOLDER, *build]

    def actor_name(self, service_id: str) -> str:
        return f"distdev:{service_id}"

    def log(self, service_id: str) -> Path:
        return Path(self.state) / "logs" / (service_id.replace("/", "__") + ".log")

    def save(self) -> None:
        _write_json(self.path, dataclasses.asdict(self))

    @classmethod
    def load(cls, state: Path) -> RayDeployment:
        path = Path(state) / DEPLOYMENT_FILE
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            raise DistdevError(
                f"no Ray deployment in {state}: start one with `distdev deploy OUT --engine ray` "
                "(or pass --state)"
            ) from None
        return cls(**raw)


@dataclasses.dataclass
class ActorInfo:
    id: str
    address: str  # tcp:<node ip>:<port>, the local engine's transport
    pid: int
    node: str
    starts: int
    http: str | None = None  # the ingress URL, on the root

    @staticmethod
    def path(state: Path, service_id: str) -> Path:
        return Path(state) / service_id / ACTOR_FILE

    def save(self, state: Path) -> None:
        _write_json(self.path(state, self.id), dataclasses.asdict(self))

    @classmethod
    def load(cls, state: Path, service_id: str) -> ActorInfo | None:
        try:
            return cls(**json.loads(cls.path(state, service_id).read_text()))
        except (FileNotFoundError, json.JSONDecodeError):
            return None


class AddressBook(Mapping[str, str]):
    """Service id -> where it listens now, read from the actors' files (re-read when a file
    changes, so a caller follows a restarted service to its new port)."""

    def __init__(self, state: Path, services: list[str]) -> None:
        self.state = Path(state)
        self.services = list(services)
        self._cache: dict[str, tuple[int, str]] = {}

    def __getitem__(self, service_id: str) -> str:
        if service_id not in self.services:
            raise KeyError(service_id)
        path = ActorInfo.path(self.state, service_id)
        try:
            stamp = path.stat().st_mtime_ns
        except FileNotFoundError:
            return PENDING
        cached = self._cache.get(service_id)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        info = ActorInfo.load(self.state, service_id)
        if info is None:
            return PENDING
        self._cache[service_id] = (stamp, info.address)
        return info.address

    def __iter__(self) -> Iterator[str]:
        return iter(self.services)

    def __len__(self) -> int:
        return len(self.services)
