"""A function service's frozen globals: what its build left them, checked after every call.

The instances of a function (``host.function``) are interchangeable only while each holds the
state its build left: a call that changed one instance's globals would make the next answer
depend on which instance it reached. So from its first call after the build, a function's
globals are compared after every call with what they held when the build ended, and a call that
changed them fails with ``FrozenStateError`` naming the global. The check runs in a replay too,
at the same point (the first call on another chain than the build's), so a journal that holds
such a failure replays it exactly.

The comparison is the state digest's, global by global (``membrane.global_hash``), so what the
check sees is what a replay's digests see — the digest is the proof. It is kept cheap: a global
whose digest form cannot change while it stays the same object (a number, a string, a tuple or
frozenset of such, a proxy) is checked by identity alone, and the namespace as a whole by the
identity of every value, which catches a rebinding, a new global and a deleted one. Only the
globals that can change in place (a dict, a list, an object's attributes) are hashed after each
call: their cost is the price of holding mutable globals in a function.
"""

from __future__ import annotations

import datetime as _dt
import decimal
import enum
import uuid
from typing import Any

from ..errors import FrozenStateError
from ..membrane import ServiceProxy, global_hash, is_state

__all__ = ["BUILD_CHAIN", "FrozenGlobals"]

BUILD_CHAIN = "build"
"""The chain of every call made while the root's top level runs (the build's): a function's
globals freeze at its first call on any other chain."""

_MISSING = object()
_SCALARS = (type(None), bool, int, float, complex, str, bytes, _dt.date, _dt.time,
            _dt.timedelta, decimal.Decimal, uuid.UUID, range)


def _fixed(value: Any, depth: int = 0) -> bool:
    """Whether ``value``'s digest form is settled by its identity: it cannot change in place."""
    if isinstance(value, _SCALARS) or type(value) is ServiceProxy:
        return True
    if depth > 4:
        return False
    if isinstance(value, enum.Enum):
        return _fixed(value.value, depth + 1)
    if type(value) in (tuple, frozenset):
        return all(_fixed(item, depth + 1) for item in value)
    return False


class FrozenGlobals:
    """The globals of one function service at the end of its build."""

    def __init__(self, service_id: str, namespace: dict[str, Any]) -> None:
        self.service_id = service_id
        self._all = dict(namespace)  # every name, state or not: the identity check's baseline
        self._state = {name: value for name, value in namespace.items() if is_state(name, value)}
        self._hashes = {name: global_hash(value) for name, value in self._state.items()
                        if not _fixed(value)}
        self._broken: str | None = None
        """What the first call that changed them did: every later call fails with it, as this
        copy of the service no longer holds its build's state (an engine replaces it)."""

    def check_intact(self) -> None:
        """Before a call: raise ``FrozenStateError`` if an earlier call changed the globals
        (the call would run on state no build made)."""
        if self._broken is not None:
            raise FrozenStateError(
                f"{self.service_id} no longer holds the state its build left: an earlier call, "
                f"{self._broken}. Restart it (under an engine a fresh instance replaces this one)")

    def check(self, namespace: dict[str, Any], export: str) -> None:
        """After a call: raise ``FrozenStateError`` if the call to ``export`` left the globals
        otherwise than the build did."""
        problem = self._difference(namespace)
        if problem is not None:
            self._broken = f"{export}, {problem}"
            raise FrozenStateError(
                f"{self.service_id}.{export} {problem}, but {self.service_id} is a function "
                "(host.function): its globals are frozen after the build, so that every "
                "instance answers alike. Keep what a call computes in local variables or "
                "return it; keep state in a service hosted with host.process(), or in a "
                "resource")

    def _difference(self, namespace: dict[str, Any]) -> str | None:
        if len(namespace) != len(self._all) or any(
                namespace.get(name, _MISSING) is not value for name, value in self._all.items()):
            problem = self._rebinding(namespace)
            if problem is not None:
                return problem
        for name, digest in self._hashes.items():
            if global_hash(namespace[name]) != digest:
                return f"changed the global {name!r} in place"
        return None

    def _rebinding(self, namespace: dict[str, Any]) -> str | None:
        """Which state global a call bound, deleted or added; None if only names that are
        not state changed (they are then the new baseline, as the digest ignores them)."""
        for name, value in self._state.items():
            now = namespace.get(name, _MISSING)
            if now is _MISSING:
                return f"deleted the global {name!r}"
            if now is not value:
                return f"bound the global {name!r} to another value"
        for name, value in namespace.items():
            if name not in self._state and is_state(name, value):
                return f"created the global {name!r}"
        self._all = dict(namespace)
        return None
