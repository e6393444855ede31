"""``resources.secret``: a value no journal, bundle, manifest or log ever holds.

A secret lives in a secret store: a folder of mode 0700 with one folder per secret and one
file of mode 0600 per version (``<store>/<resource id>/<version>``). The build's store
(``OUT/secrets``) holds the secrets it generated; a deployment's (``STATE/secrets``) starts as
a copy of it, adds those read from the environment at deploy, and keeps every rotation
(``distdev secret set``) as a new version.

``reveal()`` is a call to the secret resource like any other, but it answers a reference
(``rules.SECRET_REFERENCE``: the secret's id and its current version), which is what the
caller's journal records; the caller then reads that version's value outside its journal
(``Service.reveal``) — from its store in one process, from the resource over the
authenticated wire under an engine, from ``--secrets DIR`` in a replay. A rotation is seen by
the next ``reveal``; a replay reads the version that was current when the journal was written.
"""

from __future__ import annotations

import os
import secrets as random_secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .. import rules
from ._kinds import Kind, ResourceError, register

__all__ = ["SECRET", "SecretBackend", "SecretStore", "VALUE_EXPORT"]

VALUE_EXPORT = "value"
"""The export distdev itself calls, outside the caller's journal, for a version's value. It is
no export of the secret's proxy: service code reaches only ``reveal``."""


class SecretStore:
    """A secret store folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def _dir(self, resource_id: str) -> Path:
        return self.folder.joinpath(*resource_id.split("/"))

    def versions(self, resource_id: str) -> list[int]:
        try:
            names = os.listdir(self._dir(resource_id))
        except FileNotFoundError:
            return []
        return sorted(int(n) for n in names if n.isdigit())

    def current(self, resource_id: str) -> int | None:
        versions = self.versions(resource_id)
        return versions[-1] if versions else None

    def read(self, resource_id: str, version: int) -> str:
        path = self._dir(resource_id) / str(version)
        try:
            return path.read_text()
        except FileNotFoundError:
            raise ResourceError(
                f"the secret store {self.folder} has no version {version} of {resource_id}: "
                "pass the store of the deployment that recorded it (its STATE/secrets)"
            ) from None

    def write(self, resource_id: str, value: str) -> int:
        """Store ``value`` as the next version of the secret; its version."""
        if not isinstance(value, str) or not value:
            raise ResourceError(f"a value for secret {resource_id} is a non-empty string")
        version = (self.current(resource_id) or 0) + 1
        folder = self._dir(resource_id)
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        private = folder
        while True:  # the store and every folder in it: owner-only
            os.chmod(private, 0o700)
            if private == self.folder or private.parent == private:
                break
            private = private.parent
        path = folder / str(version)
        tmp = folder / f".{version}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(value)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        return version

    def copy_missing(self, into: SecretStore) -> None:
        """Copy every secret ``into`` does not have yet (a later deploy keeps rotations)."""
        if not self.folder.is_dir():
            return
        for path in sorted(self.folder.rglob("*")):
            if path.is_file() and path.name.isdigit():
                resource_id = path.parent.relative_to(self.folder).as_posix()
                if into.current(resource_id) is None:
                    into.write(resource_id, path.read_text())


def generated(size: int) -> str:
    """A new secret of ``size`` random bytes, as URL-safe text."""
    return random_secrets.token_urlsafe(size)


def from_environment(resource_id: str, options: Mapping[str, Any], store: SecretStore,
                     environ: Mapping[str, str]) -> None:
    """At deploy: store a secret read from the environment as a new version when it differs
    from the current one; refuse the deploy when it is unset and there is none."""
    variable = options.get("from_env")
    if not isinstance(variable, str):
        return
    value = environ.get(variable)
    current = store.current(resource_id)
    if value is None or value == "":
        if current is None:
            raise ResourceError(
                f"secret {resource_id} is read from ${variable} at deploy, and it is not set: "
                f"set {variable} in the environment of `distdev up`/`dev`, or store one with "
                f"`distdev secret set {resource_id}`")
        return
    if current is None or store.read(resource_id, current) != value:
        store.write(resource_id, value)


class SecretBackend:
    """A secret resource: ``reveal`` answers the current version's reference, ``value`` (for
    distdev, outside journals) a version's value."""

    def __init__(self, resource_id: str, store: SecretStore) -> None:
        self.id = resource_id
        self.store = store

    def call(self, caller: str, caller_seq: int | str | None, export: str,
             args: list[Any], kwargs: dict[str, Any]) -> Any:
        if export == "reveal":
            if args or kwargs:
                raise ResourceError(f"{self.id}.reveal() takes no arguments")
            version = self.store.current(self.id)
            if version is None:
                raise ResourceError(f"secret {self.id} has no value in {self.store.folder}: "
                                    f"set one with `distdev secret set {self.id}`")
            return {rules.SECRET_REFERENCE: [self.id, version]}
        if export == VALUE_EXPORT and len(args) == 1 and type(args[0]) is int and not kwargs:
            return self.store.read(self.id, args[0])
        raise ResourceError(f"secret resource {self.id} has no method {export!r}; it has: reveal")

    def close(self) -> None:
        pass


def _open(resource_id: str, options: Mapping[str, Any], folder: Path) -> SecretBackend:
    # ``folder`` is the secret store itself: a secret keeps nothing beside its versions.
    return SecretBackend(resource_id, SecretStore(folder))


def _check_options(resource_id: str, options: dict[str, Any]) -> dict[str, Any]:
    name = resource_id.rpartition("/")[2]
    generate, variable = options.pop("generate", None), options.pop("from_env", None)
    if options:
        raise ResourceError(f"resources.secret({name!r}) takes generate= or from_env=, not "
                            f"{', '.join(options)}")
    if (generate is None) == (variable is None):
        raise ResourceError(f"resources.secret({name!r}) needs one of generate=N (N random "
                            "bytes, made at build) or from_env='VAR' (read at deploy)")
    if generate is not None:
        if type(generate) is not int or not 16 <= generate <= 1024:
            raise ResourceError(f"resources.secret({name!r}, generate=N): N is a number of "
                                f"random bytes from 16 to 1024, not {generate!r}")
        return {"generate": generate}
    if not isinstance(variable, str) or not variable:
        raise ResourceError(f"resources.secret({name!r}, from_env=...) names an environment "
                            f"variable, not {variable!r}")
    return {"from_env": variable}


SECRET = register(Kind(
    name="secret",
    exports={"reveal": "() -> str"},
    docs={"reveal": "The secret's current value. Never journaled: the journal records a "
                    "reference, and a replay needs the secret store (--secrets DIR)."},
    open=_open,
    check_options=_check_options,
    ray=True,  # served by an actor, its storage in the shared state folder
))
