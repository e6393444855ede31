"""Per-service credentials: one key for each call the build allows, held only by its two ends.

The build's master secret (``OUT/secret``) stays with the operator. Deploying derives from it,
for every proxy a service holds after its build (``ServiceSpec.proxies``), the key of that
edge, and for every service the key of calls from the outside (``distdev call``, the
operator's own clients)::

    edge key     HMAC-SHA256(master, "distdev edge\\0" + caller + "\\0" + callee)
    outside key  HMAC-SHA256(master, "distdev outside\\0" + callee)

Each service gets a key file (``STATE/keys/<id>.keys``, mode 0600, in a folder of mode 0700)
with the keys of its own edges only: as a caller, to each service it holds a proxy to; as a
callee, from each service that holds a proxy to it, and from the outside. A handshake proves a
caller with the key of that one edge (``_server``), so what a service holds lets it speak as
itself to the services it may call, and nothing more; the operator, holding the master, can
derive any outside key (``OperatorKey``).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path
from typing import Protocol

import msgspec

from ..build import Manifest
from ..errors import DistdevError

__all__ = ["KEYS_FOLDER", "Credentials", "OperatorKey", "ServiceKeys", "KeyFile",
           "as_credentials", "edge_key", "outside_key", "key_file", "write_key_files",
           "key_files", "read_key_file", "read_master"]

KEYS_FOLDER = "keys"
"""The state folder's folder of key files: the part of a deployment no service may read."""
KEYS_FORMAT = "distdev-keys"
KEYS_VERSION = 1


def edge_key(master: bytes, caller: str, callee: str) -> bytes:
    """The key ``caller`` proves itself with to ``callee`` (service ids hold no NUL)."""
    return _derive(master, b"distdev edge\0" + caller.encode() + b"\0" + callee.encode())


def outside_key(master: bytes, callee: str) -> bytes:
    """The key a client outside the deployment proves itself with to ``callee``."""
    return _derive(master, b"distdev outside\0" + callee.encode())


def _derive(master: bytes, label: bytes) -> bytes:
    return hmac.new(master, label, hashlib.sha256).digest()


class Credentials(Protocol):
    """What a caller proves itself with."""

    def key_to(self, callee: str) -> bytes | None:
        """The key of this caller's calls to ``callee``; None: it has none (no capability)."""
        ...

    @property
    def remedy(self) -> str:
        """What to do when a service refuses these credentials (a sentence, or "")."""
        ...


class OperatorKey:
    """The operator's credentials: the master secret, from which every outside key follows."""

    remedy = "Use the secret of the deployment's build (OUT/secret)."

    def __init__(self, master: bytes) -> None:
        self._master = master

    def key_to(self, callee: str) -> bytes:
        return outside_key(self._master, callee)

    def __repr__(self) -> str:
        return "OperatorKey(...)"  # never the secret, in a traceback or a log


def as_credentials(credentials: Credentials | bytes) -> Credentials:
    """Credentials as given: bytes are the master secret, the operator's."""
    return OperatorKey(credentials) if isinstance(credentials, bytes) else credentials


class KeyFile(msgspec.Struct, frozen=True, kw_only=True):
    """One service's key material, as its key file holds it."""

    service: str
    services: list[str]
    """Every service of the deployment: a caller claiming one of these ids must prove it with
    that service's edge key (an outside key never speaks for a service)."""
    calls: dict[str, bytes]
    """Callee -> the key of this service's calls to it."""
    callers: dict[str, bytes]
    """Caller -> the key of its calls to this service."""
    outside: bytes
    """The key of calls to this service from outside the deployment."""
    format: str = KEYS_FORMAT
    version: int = KEYS_VERSION


class ServiceKeys:
    """A service's own credentials, as a caller and as a callee."""

    remedy = ""

    def __init__(self, file: KeyFile) -> None:
        self.me = file.service
        self._services = frozenset(file.services)
        self._calls = dict(file.calls)
        self._callers = dict(file.callers)
        self.outside = file.outside

    def key_to(self, callee: str) -> bytes | None:
        return self._calls.get(callee)

    def is_service(self, caller: str) -> bool:
        return caller in self._services

    def key_from(self, caller: str) -> bytes | None:
        """The key service ``caller`` proves itself with here; None: it holds no proxy here."""
        return self._callers.get(caller)

    def __repr__(self) -> str:
        return f"ServiceKeys({self.me!r})"


def key_file(state: Path, service_id: str) -> Path:
    """Where ``service_id``'s key file is in the state folder."""
    return Path(state) / KEYS_FOLDER / (service_id.replace("/", "__") + ".keys")


def read_master(out: Path, manifest: Manifest) -> bytes:
    """The build's master secret (the operator's: no service process reads it)."""
    path = out / manifest.secret
    try:
        return path.read_text().strip().encode()
    except FileNotFoundError:
        raise DistdevError(f"{out} has no secret ({path}): build again with "
                           "`distdev build APP.py`") from None


def key_files(manifest: Manifest, master: bytes) -> list[KeyFile]:
    """Every service's (and resource's) key file: the edges its manifest entry and the
    others' draw."""
    edges = {s.id: s.proxies for s in manifest.services}
    edges.update({r.id: r.proxies for r in manifest.resources})
    ids = list(edges)
    callees = {me: [p for p in proxies if p in edges] for me, proxies in edges.items()}
    return [
        KeyFile(service=me, services=ids,
                calls={callee: edge_key(master, me, callee) for callee in callees[me]},
                callers={caller: edge_key(master, caller, me)
                         for caller in ids if me in callees[caller]},
                outside=outside_key(master, me))
        for me in ids
    ]


def write_key_files(out: Path, state: Path, manifest: Manifest) -> None:
    """Write each service's key file into ``STATE/keys`` (derived again on every deploy: the
    same build gives the same keys)."""
    master = read_master(out, manifest)
    folder = Path(state) / KEYS_FOLDER
    folder.mkdir(mode=0o700, exist_ok=True)
    os.chmod(folder, 0o700)
    for keys in key_files(manifest, master):
        _write_private(key_file(state, keys.service), msgspec.json.encode(keys))


def _write_private(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``, readable by this user only from its first byte on."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def read_key_file(path: Path, service_id: str) -> ServiceKeys:
    """``service_id``'s credentials from its key file, or an error that says what to do."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise DistdevError(f"{service_id} has no key file at {path}: deploy the build again "
                           "(`distdev up` / `distdev deploy` write every service's keys)") from None
    try:
        keys = msgspec.json.decode(data, type=KeyFile)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise DistdevError(f"{path} is not a distdev key file ({exc}); deploy the build "
                           "again") from None
    if (keys.format, keys.version) != (KEYS_FORMAT, KEYS_VERSION):
        raise DistdevError(f"{path} is a key file of version {keys.version}; this distdev "
                           f"reads version {KEYS_VERSION}: deploy the build again")
    if keys.service != service_id:
        raise DistdevError(f"{path} holds the keys of {keys.service}, not {service_id}")
    return ServiceKeys(keys)
