"""A resource as a callee: what ``App`` calls in one process, and what the local engine's
resource host serves over the authenticated wire, with the same interface as a service
(``id``, ``exports``, ``handle_call``). It keeps no journal: its storage is its state, and
each call's outcome goes into the *caller's* journal."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..errors import ExportError, MembraneError
from ..membrane import call_arguments, error_info, is_json_call, to_wire
from ..service import CallFailed
from ._kinds import Backend, Kind, kind
from ._secret import VALUE_EXPORT

__all__ = ["ResourceHost", "Declared", "data_folder", "SECRETS_FOLDER", "RESOURCES_FOLDER"]

RESOURCES_FOLDER = "resources"
"""Where resources keep their storage, in a build (what the build wrote) and a deployment."""
SECRETS_FOLDER = "secrets"
"""The secret store, in a build and a deployment (``_secret.SecretStore``)."""


@dataclasses.dataclass(frozen=True)
class Declared:
    """A resource as its service declared it."""

    id: str
    parent: str
    kind: str
    options: Mapping[str, Any]


def data_folder(base: Path, declared: Declared) -> Path:
    """Where a resource's storage is under a build or state folder."""
    folder = SECRETS_FOLDER if declared.kind == "secret" else RESOURCES_FOLDER
    return Path(base, folder, *declared.id.split("/")) if declared.kind != "secret" \
        else Path(base, folder)


class _PlainValues:
    """Arguments reach a resource as plain values: it loads no class and calls no proxy."""

    def __init__(self, resource_id: str) -> None:
        self.id = resource_id

    def resolve_class(self, module: str, qualname: str) -> type:
        raise MembraneError(f"resource {self.id} received a {module}.{qualname}; pass plain "
                            "values (str, int, float, bytes, None, lists, tuples, dicts)")

    def make_proxy(self, service_id: str) -> Any:
        raise MembraneError(f"resource {self.id} received a proxy to {service_id}; a resource "
                            "stores values, not proxies")


def _as_given(*args: Any, **kwargs: Any) -> None:
    """The signature JSON arguments are decoded for: any values, as they are."""


class ResourceHost:
    """One open resource, answering calls in their wire form."""

    def __init__(self, declared: Declared, base: Path, *, dsn: str | None = None) -> None:
        """Open ``declared`` on its storage under ``base`` (a build or state folder), or, for
        PostgreSQL, on the server ``dsn`` names."""
        self.declared = declared
        self.id = declared.id
        self.kind: Kind = kind(declared.kind)
        options = dict(declared.options) if dsn is None else {**declared.options, "dsn": dsn}
        self.backend: Backend = self.kind.open(declared.id, options, data_folder(base, declared))
        self._plain = _PlainValues(declared.id)

    def exports(self) -> Mapping[str, str]:
        return self.kind.exports

    def handle_call(self, caller: str, chain: str, export: str, args: list[Any],
                    kwargs: dict[str, Any], caller_seq: int | str | None = None) -> Any:
        """Run one call; its result's wire form, or ``CallFailed``."""
        if export not in self.kind.exports and not (self.kind.name == "secret"
                                                    and export == VALUE_EXPORT):
            raise CallFailed(error_info(ExportError(
                f"{self.kind.name} resource {self.id} has no method {export!r}; it has: "
                f"{', '.join(self.kind.exports)}")))
        try:
            call_wire = getattr(self.backend, "call_wire", None)
            if call_wire is not None and not is_json_call(args, kwargs):
                # A backend that keeps values as they were sent (a queue's messages).
                result = call_wire(caller, caller_seq, export, args, kwargs)
            else:
                # JSON arguments (`distdev call`) are taken as the JSON values they are.
                values, named = call_arguments(_as_given, args, kwargs, self._plain)
                result = self.backend.call(caller, caller_seq, export, values, named)
            return to_wire(result, lambda: f"the value returned by {self.id}.{export}")
        except Exception as exc:
            raise CallFailed(error_info(exc)) from None

    def settle(self) -> None:
        """After the build: what its code wired into the resource (a queue's consumers,
        ``Backend.wiring``) joins the declared options, which the manifest records and every
        later host of it opens with."""
        wiring = getattr(self.backend, "wiring", None)
        if wiring is not None:
            self.declared = dataclasses.replace(
                self.declared, options={**self.declared.options, **wiring()})

    def start_delivery(self, deliver: Callable[[str, str, str, list[Any]], Any],
                       log: Callable[[str], None]) -> None:
        """Let a resource that calls services (a queue delivering) start calling them, through
        ``deliver`` (``_messaging.Deliver``); nothing for the other kinds."""
        start = getattr(self.backend, "start_delivery", None)
        if start is not None:
            start(deliver, log)

    def stop_delivery(self) -> None:
        stop = getattr(self.backend, "stop_delivery", None)
        if stop is not None:
            stop()

    def close(self) -> None:
        self.backend.close()
