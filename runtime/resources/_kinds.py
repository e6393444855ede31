"""The kinds of resource: what each one's proxy exports, how it is opened, where it may run.

A kind is registered once (``register``) and every part reads it from here: the declaring
service's ``resources.<kind>(...)`` checks its options, the build writes its exports into the
manifest, ``App`` and the local engine's resource host open a ``Backend`` for it, and an engine
that cannot host it refuses the deployment naming the kind.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from ..errors import DistdevError

__all__ = ["Backend", "Kind", "ResourceError", "register", "kind", "kinds"]


class ResourceError(DistdevError):
    """A resource was declared or used wrongly; the message says how to do it instead."""


class Backend(Protocol):
    """One open resource: its durable storage, answering calls by export name.

    ``call`` gets the arguments as plain Python values and returns a value that can cross a
    membrane; ``caller``/``caller_seq`` identify a call that may arrive again after a crash,
    so that a backend that stores outcomes (SQL, key-value) answers it from its record."""

    def call(self, caller: str, caller_seq: int | str | None, export: str,
             args: list[Any], kwargs: dict[str, Any]) -> Any: ...

    def close(self) -> None: ...


Opener = Callable[[str, Mapping[str, Any], Path], Backend]
"""(resource id, options, data folder) -> an open backend whose storage is in that folder."""


@dataclasses.dataclass(frozen=True)
class Kind:
    """A kind of resource."""

    name: str
    exports: Mapping[str, str]
    """Export name -> its signature as documentation and the language server show it."""
    docs: Mapping[str, str]
    """Export name -> a one-line description."""
    open: Opener
    check_options: Callable[[str, dict[str, Any]], dict[str, Any]]
    """(resource id, options as declared) -> the options the manifest records, or an error
    that says what to pass instead."""
    ray: bool = False
    """Whether the Ray engine hosts it (else a deployment to Ray is refused, naming it)."""
    calls: Callable[[Mapping[str, Any]], list[str]] | None = None
    """(options) -> the services a resource of this kind calls (a queue's consumers): its
    edges in the manifest, each given a key when deployed. None: it calls no one."""


_KINDS: dict[str, Kind] = {}


def register(new: Kind) -> Kind:
    """Add a kind of resource (each module of a kind registers itself when imported)."""
    _KINDS[new.name] = new
    return new


def kind(name: str) -> Kind:
    found = _KINDS.get(name)
    if found is None:
        raise ResourceError(f"no kind of resource {name!r} (kinds: {', '.join(sorted(_KINDS))}); "
                            "this build may come from a newer distdev")
    return found


def kinds() -> dict[str, Kind]:
    return dict(_KINDS)
