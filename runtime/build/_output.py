"""The build output: manifest, per-service journals and bundles, and the master secret.

Layout of ``OUT``::

    manifest.json                      the service tree, hosting, exports, proxies, hash seed
    secret                             the master secret (mode 0600): the operator's; each
                                       service's keys are derived from it when deployed
    services/<id>/journal.cbor         each service's build journal
    services/<id>/bundle/<path>        exactly the application files that service imported
    app/<path>                         every file of the application (``rules.app_files``): a
                                       service reading one first at runtime (a template, a
                                       data file) finds it there, wherever it runs
    resources/<id>/                    what the build wrote into each resource (a SQLite file,
                                       a PostgreSQL dump): a deployment's first content
    secrets/<id>/<version>             the secrets the build generated (folders 0700, files
                                       0600): the build's secret store
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import secrets
import shutil
import types
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Iterator

from .. import rules
from .._version import VERSION, recorded_hash_seed
from ..membrane import ServiceProxy, target_of
from ..resources import RESOURCES_FOLDER, SECRETS_FOLDER, Declared, data_folder, kind
from ..service import Service
from ._manifest import MANIFEST_FILE, ExportSpec, HostSpec, Manifest, ParamSpec, ServiceSpec
from ._manifest import ResourceSpec
from ._manifest import write_manifest

__all__ = ["BuildOutput", "clear_build_output", "write_build_output", "describe_service",
           "describe_export", "held_proxies", "APP_FILES"]

APP_FILES = "app"
"""The folder of ``OUT`` that holds a copy of every file of the application."""


@dataclasses.dataclass(frozen=True)
class BuildOutput:
    """Where a build wrote its output, and its manifest."""

    out: Path
    manifest: Manifest

    @property
    def manifest_path(self) -> Path:
        return self.out / MANIFEST_FILE

    def journal(self, service_id: str) -> Path:
        return self.out / "services" / service_id / "journal.cbor"


def clear_build_output(out: Path) -> None:
    """Remove a previous build's output (only what a build writes)."""
    shutil.rmtree(out / "services", ignore_errors=True)
    shutil.rmtree(out / APP_FILES, ignore_errors=True)
    shutil.rmtree(out / RESOURCES_FOLDER, ignore_errors=True)
    shutil.rmtree(out / SECRETS_FOLDER, ignore_errors=True)
    for name in (MANIFEST_FILE, "secret"):
        (out / name).unlink(missing_ok=True)


def write_build_output(root_id: str, app_root: Path, services: list[Service],
                       out: Path, outside: list[Path],
                       resources: Sequence[Declared] = ()) -> BuildOutput:
    """Write every service's bundle, the application's files, the manifest and a new master
    secret into ``out`` (the journals are written by the build itself). ``outside``: folders
    under the application that are not its files (the build's output and state)."""
    out.mkdir(parents=True, exist_ok=True)
    for rel in rules.app_files(app_root, [out, *outside]):
        target = out / APP_FILES / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(app_root / rel, target)
    for service in services:
        bundle_dir = out / "services" / service.id / "bundle"
        for rel, _digest, source in service.compartment.bundle_files():
            target = bundle_dir / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source)
    manifest = Manifest(distdev=VERSION, root=root_id, app_root=str(app_root),
                        hash_seed=recorded_hash_seed(), secret="secret",
                        services=[describe_service(s) for s in services],
                        resources=[describe_resource(r, out) for r in resources])
    write_manifest(out, manifest)
    _write_secret(out / "secret")
    return BuildOutput(out, manifest)


def _write_secret(path: Path) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32) + "\n")
    os.chmod(path, 0o600)


def describe_service(service: Service) -> ServiceSpec:
    """A service's manifest entry."""
    host = None if service.host is None else HostSpec(**service.host)
    return ServiceSpec(
        id=service.id, parent=service.parent, source=service.entry, host=host,
        exports=[describe_export(n, f) for n, f in service.exports().items()],
        proxies=sorted({target_of(p) for p in held_proxies(service.module.__dict__)}),
        journal=f"services/{service.id}/journal.cbor",
        bundle=[rel for rel, _d, _s in service.compartment.bundle_files()],
    )


def describe_resource(declared: Declared, out: Path) -> ResourceSpec:
    """A resource's manifest entry: its kind's exports as signatures, and where the build
    wrote its content."""
    described = kind(declared.kind)
    exports = [ExportSpec(name, f"{name}{signature}", [], signature.rpartition(" -> ")[2],
                          described.docs.get(name)) for name, signature in described.exports.items()]
    folder = data_folder(out, declared)
    data = None
    if declared.kind != "secret" and folder.is_dir():
        data = folder.relative_to(out).as_posix()
    calls = [] if described.calls is None else sorted(described.calls(declared.options))
    return ResourceSpec(declared.id, declared.parent, declared.kind, dict(declared.options),
                        exports, data, calls)


def describe_export(name: str, function: Any) -> ExportSpec:
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return ExportSpec(name, "(...)", [], None)
    params = [
        ParamSpec(p.name, p.kind.name.lower(), _annotation(p.annotation),
                  None if p.default is p.empty else repr(p.default))
        for p in signature.parameters.values()
    ]
    returns = _annotation(signature.return_annotation)
    rendered = f"{name}({_format_params(signature)})" + (f" -> {returns}" if returns else "")
    return ExportSpec(name, rendered, params, returns, inspect.getdoc(function))


def _format_params(signature: inspect.Signature) -> str:
    """Parameters as written in the source (string annotations unquoted)."""
    parts = []
    params = list(signature.parameters.values())
    for i, p in enumerate(params):
        if p.kind is p.KEYWORD_ONLY and (i == 0 or params[i - 1].kind < p.KEYWORD_ONLY):
            if not any(q.kind is q.VAR_POSITIONAL for q in params):
                parts.append("*")
        stars = "*" if p.kind is p.VAR_POSITIONAL else "**" if p.kind is p.VAR_KEYWORD else ""
        text = stars + p.name
        annotation = _annotation(p.annotation)
        if annotation:
            text += f": {annotation}"
        if p.default is not p.empty:
            text += f" = {p.default!r}" if annotation else f"={p.default!r}"
        parts.append(text)
        if p.kind is p.POSITIONAL_ONLY and (i + 1 == len(params)
                                            or params[i + 1].kind is not p.POSITIONAL_ONLY):
            parts.append("/")
    return ", ".join(parts)


def _annotation(annotation: Any) -> str | None:
    if annotation is inspect.Parameter.empty:
        return None
    return annotation if isinstance(annotation, str) else inspect.formatannotation(annotation)


def held_proxies(namespace: dict[str, Any]) -> Iterator[ServiceProxy]:
    """Proxies reachable from a module's variables: through containers and the attributes of
    the objects they hold. These are the services the module's service may call at runtime,
    so a proxy kept in an object (``self.billing``) counts; modules, classes and functions
    are not looked into (what they hold is another namespace, or code)."""
    seen: set[int] = set()
    stack: list[Any] = [v for k, v in namespace.items() if not k.startswith("__")]
    while stack:
        value = stack.pop()
        if type(value) is ServiceProxy:
            yield value
            continue
        if id(value) in seen:
            continue
        seen.add(id(value))
        if isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, (list, tuple, set, frozenset)):
            stack.extend(value)
        elif not isinstance(value, _NOT_STATE):
            stack.extend(_attributes(value))


_NOT_STATE = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType,
              types.MethodType, str, bytes, int, float, complex, bool)


def _attributes(value: Any) -> list[Any]:
    """An object's own attributes: its ``__dict__`` and its slots, a Python class's or a C
    type's members (read by their descriptors, so no ``__getattr__`` of the object's runs)."""
    try:
        found = list(object.__getattribute__(value, "__dict__").values())
    except (AttributeError, TypeError):
        found = []
    for cls in type(value).__mro__:
        for member in cls.__dict__.values():
            if type(member) is types.MemberDescriptorType:
                try:
                    found.append(member.__get__(value, cls))
                except (AttributeError, TypeError):
                    continue  # a slot never set
    return found
