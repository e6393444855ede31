"""The deployment file: where a running deployment's services listen, and their processes.

``STATE/deployment.json`` is written by the supervisor and read by service processes (to find
each other), by ``distdev call`` and by ``distdev status``/``down``. It names the build's secret,
the operator's; no service process reads that secret, or any key file but its own.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import threading
from pathlib import Path
from typing import Any

from ...errors import DistdevError
from ...resources import SECRETS_FOLDER
from .._keys import KEYS_FOLDER, key_file

FILE = "deployment.json"

READY = "distdev-service-ready"
"""The line a service process (or a function's pool) prints once it serves: its supervisor
waits for it. Defined here, not in ``_host``, so that running ``_host`` as a module does not
find it imported already."""

_output = threading.Lock()


def log_line(message: str) -> None:
    """Write ``message`` as one whole line to this process's output, which its supervisor
    reads line by line: ``print`` writes the text and its newline apart, so a line another
    thread logs meanwhile (a call resumed after a restart) could run into ``READY``, and the
    supervisor would never see the service ready."""
    with _output:
        sys.stdout.write(message + "\n")
        sys.stdout.flush()


def says_ready(line: str) -> tuple[bool, str]:
    """Whether a line of a service process's output announces ``READY``, and the line without
    the marker. The marker is written whole (``log_line``), but the service's own code may
    have printed part of a line before it, which is kept."""
    text = line.rstrip("\n")
    if not text.endswith(READY):
        return False, line
    before = text.removesuffix(READY)
    return True, before + "\n" if before else ""


STATES = ("starting", "ready", "restarting", "crash-loop", "stopped")
"""A service's state as its supervisor sees it: ``starting`` (its first process, not serving
yet), ``ready`` (serving), ``restarting`` (a new process after one exited, or waiting to start
one), ``crash-loop`` (it failed to start the same way several times in a row; still retried,
less and less often), ``stopped``."""


@dataclasses.dataclass
class ServiceEntry:
    id: str
    address: str
    pid: int | None = None
    restarts: int = 0
    http: int | None = None
    state: str = "starting"
    last_error: str | None = None
    """Why its last process exited, as it said."""
    max_instances: int | None = None
    """A function's (``host.function``): its process is then its pool (``_pool``), which runs
    up to this many instances of it."""


@dataclasses.dataclass
class Deployment:
    out: str
    state: str
    secret_file: str
    hash_seed: str | None
    root: str
    services: dict[str, ServiceEntry]
    exports: dict[str, list[str]]
    supervisor: int | None = None
    ready: bool = False
    durable: bool = True
    """Whether each reply waits for fdatasync (``up`` without ``--no-sync``): an upgrade
    restarts the deployment the same way unless told otherwise."""
    resources: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    """Resource id -> ``{"kind", "parent", "options"}``: the entries of ``services`` that a
    resource host serves (``_resources``) instead of a restored service."""

    @property
    def path(self) -> Path:
        return Path(self.state) / FILE

    def secret(self) -> bytes:
        """The build's master secret: the operator's (``distdev call``)."""
        return Path(self.secret_file).read_text().strip().encode()

    def key_file(self, service_id: str) -> Path:
        return key_file(Path(self.state), service_id)

    def key_material(self) -> list[Path]:
        """Everything a service process must not read: the secret, the key files, the secret
        stores (a service reads a secret through its proxy, which the store's host answers)."""
        return [Path(self.secret_file), Path(self.state) / KEYS_FOLDER,
                Path(self.state) / SECRETS_FOLDER, Path(self.out) / SECRETS_FOLDER]

    def journal(self, service_id: str) -> Path:
        return Path(self.state) / service_id / "journal.cbor"

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(dataclasses.asdict(self), indent=2))
        os.replace(tmp, self.path)

    @classmethod
    def load(cls, state: Path) -> Deployment:
        path = Path(state) / FILE
        try:
            raw: dict[str, Any] = json.loads(path.read_text())
        except FileNotFoundError:
            raise DistdevError(
                f"no deployment in {state}: start one with `distdev up` (or pass --state)"
            ) from None
        raw["services"] = {k: ServiceEntry(**v) for k, v in raw["services"].items()}
        return cls(**raw)
