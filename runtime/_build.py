"""The build output: manifest, per-service journals and bundles, and the deployment secret.

Layout of ``OUT``::

    manifest.json                      the service tree, hosting, exports, proxies, hash seed
    secret                             the deployment's shared secret (mode 0600)
    services/<id>/journal.cbor         each service's build journal
    services/<id>/bundle/<path>        exactly the application files that service imported
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import os
import secrets
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from ._proxy import ServiceProxy, target_of
from ._version import VERSION, recorded_hash_seed

if TYPE_CHECKING:
    from ._app import App
    from ._service import Service

MANIFEST_FORMAT = "distdev-manifest"


@dataclasses.dataclass(frozen=True)
class BuildOutput:
    """Where a build wrote its output."""

    out: Path
    manifest: dict[str, Any]

    @property
    def manifest_path(self) -> Path:
        return self.out / "manifest.json"

    def journal(self, service_id: str) -> Path:
        return self.out / "services" / service_id / "journal.cbor"


def clear_build_output(out: Path) -> None:
    """Remove a previous build's output (only what a build writes)."""
    shutil.rmtree(out / "services", ignore_errors=True)
    for name in ("manifest.json", "secret"):
        (out / name).unlink(missing_ok=True)


def write_build_output(app: App, out: Path) -> BuildOutput:
    out.mkdir(parents=True, exist_ok=True)
    services = [describe_service(s) for s in app.services.values()]
    for service in app.services.values():
        bundle_dir = out / "services" / service.id / "bundle"
        for rel, _digest, source in service.compartment.bundle_files():
            target = bundle_dir / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source)
    manifest = {
        "format": MANIFEST_FORMAT,
        "version": 1,
        "distdev": VERSION,
        "root": app.root_id,
        "app_root": str(app.root),
        "hash_seed": recorded_hash_seed(),
        "secret": "secret",
        "services": services,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    _write_secret(out / "secret")
    return BuildOutput(out, manifest)


def _write_secret(path: Path) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32) + "\n")
    os.chmod(path, 0o600)


def describe_service(service: Service) -> dict[str, Any]:
    """A service's manifest entry."""
    return {
        "id": service.id,
        "parent": service.parent,
        "source": service.entry,
        "host": service.host,
        "exports": [describe_export(n, f) for n, f in service.exports().items()],
        "proxies": sorted({target_of(p) for p in held_proxies(service.module.__dict__)}),
        "journal": f"services/{service.id}/journal.cbor",
        "bundle": [rel for rel, _d, _s in service.compartment.bundle_files()],
    }


def describe_export(name: str, function: Any) -> dict[str, Any]:
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return {"name": name, "signature": "(...)", "params": [], "returns": None}
    params = [
        {
            "name": p.name,
            "kind": p.kind.name.lower(),
            "annotation": _annotation(p.annotation),
            "default": None if p.default is p.empty else repr(p.default),
        }
        for p in signature.parameters.values()
    ]
    returns = _annotation(signature.return_annotation)
    return {
        "name": name,
        "signature": f"{name}({_format_params(signature)})" + (f" -> {returns}" if returns else ""),
        "params": params,
        "returns": returns,
        "doc": inspect.getdoc(function),
    }


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
    """Proxies reachable from a module's variables (through containers)."""
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
