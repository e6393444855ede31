"""The deployment manifest (``OUT/manifest.json``): the service tree a build produced, typed.

One reader for every engine and command: ``read_manifest`` checks the file is a distdev
manifest of a version this build understands before anything uses it.
"""

from __future__ import annotations

from pathlib import Path

import msgspec

from ..errors import DistdevError

__all__ = ["MANIFEST_FORMAT", "MANIFEST_VERSION", "HostSpec", "ParamSpec", "ExportSpec",
           "ServiceSpec", "Manifest", "read_manifest", "write_manifest"]

MANIFEST_FORMAT = "distdev-manifest"
MANIFEST_VERSION = 1
MANIFEST_FILE = "manifest.json"


class HostSpec(msgspec.Struct, frozen=True):
    """How a service declared it is hosted: ``host.process(http=..., interleave=...)`` (kind
    ``process``) or ``host.function(max_instances=..., http=...)`` (kind ``function``)."""

    kind: str
    http: int | None = None
    interleave: bool = False
    """Whether its calls may interleave at call-outs (one at a time, switching only there)."""
    max_instances: int | None = None
    """A function's: how many instances of it an engine may run at once."""

    @property
    def instances(self) -> int:
        """How many copies of the service an engine may run: one, unless it is a function."""
        return (self.max_instances or 1) if self.kind == "function" else 1


class ParamSpec(msgspec.Struct, frozen=True):
    name: str
    kind: str
    annotation: str | None
    default: str | None


class ExportSpec(msgspec.Struct, frozen=True):
    """One export, with its signature as written in the source."""

    name: str
    signature: str
    params: list[ParamSpec]
    returns: str | None
    doc: str | None = None


class ServiceSpec(msgspec.Struct, frozen=True):
    id: str
    parent: str | None
    source: str
    host: HostSpec | None
    exports: list[ExportSpec]
    proxies: list[str]
    """The services this one holds a proxy to, after its build: the only ones it may call at
    runtime (each such call gets a key of its own when the build is deployed)."""
    journal: str
    bundle: list[str]


class Manifest(msgspec.Struct, frozen=True):
    distdev: str
    root: str
    app_root: str
    hash_seed: str | None
    secret: str
    services: list[ServiceSpec]
    format: str = MANIFEST_FORMAT
    version: int = MANIFEST_VERSION

    def service(self, service_id: str) -> ServiceSpec:
        for spec in self.services:
            if spec.id == service_id:
                return spec
        raise DistdevError(f"no service {service_id!r} in this build (services: "
                           f"{', '.join(s.id for s in self.services)})")

    @property
    def root_service(self) -> ServiceSpec:
        return self.service(self.root)

    def exports(self) -> dict[str, list[str]]:
        """Service id -> its export names."""
        return {s.id: [e.name for e in s.exports] for s in self.services}


def write_manifest(out: Path, manifest: Manifest) -> Path:
    path = out / MANIFEST_FILE
    path.write_bytes(msgspec.json.format(msgspec.json.encode(manifest), indent=2) + b"\n")
    return path


def read_manifest(out: Path) -> Manifest:
    """The manifest of the build in ``out``, or an error that says what to do."""
    path = out / MANIFEST_FILE
    try:
        data = path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        raise DistdevError(f"no build in {out}: run `distdev build APP.py -o {out}` first") from None
    try:
        header = msgspec.json.decode(data, type=dict[str, object])
    except msgspec.DecodeError as exc:
        raise DistdevError(f"{path} is not a distdev manifest ({exc}); build again with "
                           "`distdev build APP.py`") from None
    if header.get("format") != MANIFEST_FORMAT:
        raise DistdevError(f"{path} is not a distdev manifest; build again with "
                           "`distdev build APP.py`")
    if header.get("version") != MANIFEST_VERSION:
        raise DistdevError(f"{path} has manifest version {header.get('version')}; this distdev "
                           f"reads version {MANIFEST_VERSION}: build again with this distdev, or "
                           f"use the release that wrote it ({header.get('distdev')})")
    try:
        return msgspec.json.decode(data, type=Manifest)
    except msgspec.ValidationError as exc:
        raise DistdevError(f"{path} is damaged ({exc}); build again with "
                           "`distdev build APP.py`") from None
