"""The errors distdev raises.

Every message says what happened and what to do next. The tree::

    DistdevError
    ├── ServiceLoadError            a service file is missing, outside the app, or fails to load
    │   └── ServiceIdClashError     two siblings would get the same id (use ``name=``)
    ├── PhaseError                  a build-time declaration made at runtime, or the reverse
    ├── MembraneError               a value that cannot cross a membrane
    ├── ExportError (AttributeError) a proxy asked for something its service does not export
    ├── DeterminismError            service code tried something that would break replay
    │   └── FrozenStateError        a call to a function service changed its globals
    ├── ServiceError                an exception raised inside another service, carried back
    ├── ServiceUnavailableError     a proxy whose service is not reachable from here
    ├── DeploymentError             a deployment that cannot start: a service that cannot be
    │                               restored, a port in use
    ├── JournalError                a journal that cannot be read
    │   ├── JournalCorruptError     a bad record before the end: offset and sequence number
    │   └── JournalFormatError      not a distdev journal, or a version this build cannot read
    ├── HashSeedError               replay under a different PYTHONHASHSEED than the journal's
    ├── ReplayDivergenceError       the code did something other than what its journal says
    └── HTTPError                   raised by service code: the ingress answers with its status

Errors a user fixes by changing input (exit code 1 on the command line) are distinguished from
the two that mean a journal and its code disagree or a journal is damaged (exit code 2):
``ReplayDivergenceError`` and ``JournalError``.
"""

from __future__ import annotations

__all__ = [
    "DistdevError",
    "ServiceLoadError",
    "ServiceIdClashError",
    "PhaseError",
    "MembraneError",
    "ExportError",
    "DeterminismError",
    "FrozenStateError",
    "ServiceError",
    "ServiceUnavailableError",
    "DeploymentError",
    "JournalError",
    "JournalCorruptError",
    "JournalFormatError",
    "HashSeedError",
    "ReplayDivergenceError",
    "HTTPError",
]


class DistdevError(Exception):
    """Base of every error distdev raises on purpose."""


class ServiceLoadError(DistdevError):
    """A service file could not be found or loaded."""


class ServiceIdClashError(ServiceLoadError):
    """Two services imported by the same parent would get the same id."""


class PhaseError(DistdevError):
    """Something that belongs to one phase (build, runtime, replay) was used in another."""


class MembraneError(DistdevError):
    """A value that cannot cross a service membrane, refused before anything is journaled."""


class ExportError(DistdevError, AttributeError):
    """A proxy was asked for a name its service does not export.

    It is an ``AttributeError`` too, so ``hasattr`` and ``getattr(proxy, name, default)`` behave.
    """


class DeterminismError(DistdevError):
    """Service code did something replay could not reproduce (a thread, a socket, a write)."""


class FrozenStateError(DeterminismError):
    """A call to a function service (``host.function``) changed its globals, which its build
    froze: its instances are interchangeable only while they all hold the build's state."""


class ServiceUnavailableError(DistdevError):
    """A proxy was called but its service is not reachable from this process."""


class CallTimeoutError(ServiceUnavailableError):
    """A call got no answer within the call timeout (``DISTDEV_CALL_TIMEOUT``).

    ``may_have_run`` says whether the callee could still run it: False when the call never
    reached the callee; True when it did. A callee never starts a call after its caller's
    deadline, so True means it had started the call before that, and its own journal says
    whether it finished (it runs it at most once)."""

    def __init__(self, message: str, may_have_run: bool = True) -> None:
        super().__init__(message)
        self.may_have_run = may_have_run

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (str(self), self.may_have_run))


class DeploymentError(DistdevError):
    """A deployment could not start; the message names the service and what stopped it."""


class ServiceError(DistdevError):
    """An exception raised inside another service whose type does not exist in the caller.

    ``type_name``, ``message`` and ``remote_traceback`` describe the original exception;
    ``service`` is the id of the service that raised it.
    """

    def __init__(self, service: str, type_name: str, message: str, remote_traceback: str) -> None:
        super().__init__(f"{type_name} in service {service}: {message}")
        self.service = service
        self.type_name = type_name
        self.message = message
        self.remote_traceback = remote_traceback

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.service, self.type_name, self.message, self.remote_traceback))


class JournalError(DistdevError):
    """A journal could not be read."""


class JournalFormatError(JournalError):
    """The file is not a distdev journal, or has a format version this build cannot read."""


class JournalCorruptError(JournalError):
    """A record before the end of a journal is damaged.

    ``offset`` is the byte offset of the damaged record and ``seq`` its sequence number.
    """

    def __init__(self, message: str, *, path: str, offset: int, seq: int) -> None:
        super().__init__(message)
        self.path = path
        self.offset = offset
        self.seq = seq


class HTTPError(DistdevError):
    """An answer a service gives on purpose: the HTTP ingress responds with ``status`` and a
    JSON body ``{"error", "message", "detail"}``; ``distdev call`` prints it and exits 1.

    ``raise HTTPError(404, f"no order {order_id}")`` from any service: it crosses membranes as
    itself (its arguments rebuild it), so a child's HTTPError that the root lets through is the
    root's answer too, and a journal replays it with the same status. ``detail`` is any value
    that can cross a membrane (a dict of field problems, say); it is sent as JSON.
    """

    def __init__(self, status: int, message: str, detail: object = None) -> None:
        if type(status) is not int or not 400 <= status <= 599:
            raise ValueError(f"HTTPError({status!r}, ...): the status is an error status, an "
                             "int from 400 to 599 (404: not found, 409: conflict, 422: invalid)")
        super().__init__(status, message, detail)  # what rebuilds it across a membrane
        self.status = status
        self.message = message
        self.detail = detail

    def __str__(self) -> str:
        return f"{self.status} {self.message}"

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.status, self.message, self.detail))


class HashSeedError(DistdevError):
    """A journal recorded under one PYTHONHASHSEED is replayed under another."""


_SAME_CODE = ("The code is the code that wrote this journal (its files' hashes match), so "
              "what differs comes from something the journal does not hold: a source of "
              "nondeterminism at that line that distdev does not cover. Do it inside an "
              "@distdev.effect, and report it (docs/determinism.md).")
_STATE_CHANGED = (
    "Every event before it matched and the code is the code that wrote the journal, so "
    "something outside the journal changed this state: object identity (id(), default hash or "
    "repr), garbage-collection timing, another service reaching into this one's memory in one "
    "process, an @effect whose body changed a global (a replay does not run effect bodies), or a "
    "library's hidden state (docs/determinism.md).")
_OTHER_CODE = ("The code is not the code that wrote this journal: replay with the original "
               "source, or keep the old behaviour for old history (docs/determinism.md).")


class ReplayDivergenceError(DistdevError):
    """Replayed code did something other than what its journal records.

    ``service``, ``seq``, ``expected``, ``actual`` and ``location`` ("file:line") say where and how.
    ``same_code``: the code replayed is the journal's own (then the message never blames it).
    ``in_state``: what differs is the service's state, measured by a state digest; ``state``
    names the globals that differ when the divergence is an event's.
    """

    def __init__(
        self, *, service: str, seq: int, expected: str, actual: str, location: str,
        same_code: bool = False, in_state: bool = False, state: str | None = None,
    ) -> None:
        if not same_code:
            why = _OTHER_CODE
        else:
            why = _STATE_CHANGED if in_state or state is not None else _SAME_CODE
        super().__init__(
            f"replay of {service} diverged at event {seq}: the journal expected {expected}, "
            f"but the code {actual} at {location}. {state + ' ' if state else ''}{why}"
        )
        self.same_code = same_code
        self.service = service
        self.seq = seq
        self.expected = expected
        self.actual = actual
        self.location = location
