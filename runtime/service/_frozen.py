"""A function service's frozen globals: what its build left them, checked after every call.

The instances of a function (``host.function``) are interchangeable only while each holds the
state its build left: a call that changed one instance's globals would make the next answer
depend on which instance it reached. So from its first call after the build, a function's
globals are compared after every call with what they held when the build ended, and a call that
changed them fails with ``FrozenStateError`` naming the global. The check runs in a replay too,
at the same point (the first call on another chain than the build's), so a journal that holds
such a failure replays it exactly.

What counts as a change is what the state digest sees, global by global
(``membrane.global_hash``): the digest is the proof, so the check never fails a call whose
globals a replay's digests would find unchanged. Computing it after every call would cost more
than most calls (a JSON form and a hash of each global), so cheaper checks come first:

- the namespace as a whole by the identity of every value, which catches a rebinding, a new
  global and a deleted one;
- a global whose digest form cannot change while it stays the same object (a number, a string,
  a tuple or frozenset of such, a proxy) by identity alone;
- a global of plain data (dicts, lists, sets, tuples of numbers, strings, bytes, None) by its
  pickle, taken by a pickler that refuses every other type (so it never runs the code of a
  class of the application's) — exact about values, types and order, and several times cheaper
  than the digest form; only when it differs is the digest hash computed, to decide;
- any other global (an object's attributes, a database) by its digest hash.

Measured in ``benchmarks/bench_functions.py`` (``functions.frozen_check``).
"""

from __future__ import annotations

import datetime as _dt
import decimal
import enum
import io
import operator
import pickle
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


class _PlainPickler(pickle.Pickler):
    """Pickles plain data only: every type it is not built to pickle itself reaches
    ``reducer_override`` (a class of the application's, a subclass of dict), which refuses."""

    def reducer_override(self, obj: Any) -> Any:
        raise pickle.PicklingError(f"not plain data: {type(obj).__name__}")


class _PlainForms:
    """Pickles of plain data with one pickler, kept (making one costs more than a small pickle):
    used by one service's check, which runs one call at a time."""

    def __init__(self) -> None:
        self._buffer = io.BytesIO()
        self._pickler = _PlainPickler(self._buffer, protocol=5)

    def __call__(self, value: Any) -> bytes | None:
        """``value``'s pickle if it is plain data, else None."""
        buffer = self._buffer
        buffer.seek(0)
        buffer.truncate()
        self._pickler.clear_memo()
        try:
            self._pickler.dump(value)
        except (pickle.PicklingError, RecursionError, TypeError, ValueError):
            return None
        return buffer.getvalue()


class FrozenGlobals:
    """The globals of one function service at the end of its build."""

    def __init__(self, service_id: str, namespace: dict[str, Any]) -> None:
        self.service_id = service_id
        self._baseline(namespace)
        self._state = {name: value for name, value in namespace.items() if is_state(name, value)}
        self._plain_form = _PlainForms()
        mutable = {name: value for name, value in self._state.items() if not _fixed(value)}
        self._hashes = {name: global_hash(value) for name, value in mutable.items()}
        self._plain = {name: form for name, value in mutable.items()
                       if (form := self._plain_form(value)) is not None}
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
        if len(namespace) != len(self._values) or not all(
                map(operator.is_, namespace.values(), self._values)) \
                or namespace.keys() != self._names:  # C loops: the whole namespace in ~1 us
            problem = self._rebinding(namespace)
            if problem is not None:
                return problem
        for name, digest in self._hashes.items():
            value = namespace[name]
            plain = self._plain.get(name)
            if plain is not None and self._plain_form(value) == plain:
                continue
            if global_hash(value) != digest:
                return f"changed the global {name!r} in place"
            if plain is not None:  # other bytes, the same digest (say, another aliasing)
                self._plain[name] = self._plain_form(value) or plain
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
        self._baseline(namespace)
        return None

    def _baseline(self, namespace: dict[str, Any]) -> None:
        """Every name and value, state or not, in order: the identity check's baseline."""
        self._names = set(namespace)
        self._values = list(namespace.values())
