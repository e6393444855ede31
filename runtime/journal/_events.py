"""Journal event types.

Each event is a frozen, array-like msgspec Struct whose tag is its first element, so a record's
payload is a CBOR array ``[kind, seq, ...fields]`` that any CBOR decoder reads. Values that crossed
the membrane (arguments, results, effect values) are stored in their wire form (see
``_marshal``): CBOR data with distdev's semantic tags.
"""

from __future__ import annotations

from typing import Any

import msgspec

from ..membrane import ErrorInfo, wire_repr

FORMAT_NAME = "distdev-journal"
FORMAT_VERSION = 4
"""The version written. 4: a ``checkpoint`` record holds a verified snapshot of the service's
state, from which a restore replays only the records after it. 3: a ``switch`` record says
which call resumes when calls of a service that interleaves them do not end in the order they
began. 2: what a journal covers is every line
run for the service (1: the service's own code only)."""
READABLE_VERSIONS = (1, 2, 3, 4)
"""Every version this distdev reads and replays (tests/golden holds a journal of each)."""


class EventBase(msgspec.Struct, frozen=True, array_like=True, tag_field="kind"):
    seq: int
    """The record's index in its journal (the header is 0)."""


class BundleFile(msgspec.Struct, frozen=True, array_like=True):
    """One application file a service imported: its path relative to the app root."""

    path: str
    sha256: str
    source: bytes


class Header(EventBase, frozen=True, tag="header"):
    """The first record: what wrote the journal, for which service, and the service's code."""

    format: str
    version: int
    service: str
    distdev: str
    python: str
    hash_seed: str | None
    app_root: str
    entry: str
    bundle: list[BundleFile]
    tz: str | None = None
    """The local time zone the service converted times in (format 2; a replay converts in
    it)."""
    services: list[str] = []
    """The application files that are services' modules, every one of the build's: the
    service never imports one but its own (``rules.SERVICE_MODULE_GLOBAL``). Empty in journals
    written before: then it knows its own and its children's."""


class CallIn(EventBase, frozen=True, tag="call-in"):
    """Another service (or the outside, caller ``""``) called one of this service's exports.

    ``caller_seq`` is the id the caller gave the call, when it came over a network: (caller,
    caller_seq) identifies a call that is re-sent after a crash. Services give their call-outs
    "<their incoming call's id>/<k>", or their journal seq when handling a call without one.
    """

    caller: str
    chain: str
    export: str
    args: list[Any]
    kwargs: dict[str, Any]
    caller_seq: int | str | None = None


class Return(EventBase, frozen=True, tag="return"):
    value: Any


class Raise(EventBase, frozen=True, tag="raise"):
    error: ErrorInfo


class CallOut(EventBase, frozen=True, tag="call-out"):
    """This service called an export of another service."""

    target: str
    export: str
    args: list[Any]
    kwargs: dict[str, Any]


class ResultIn(EventBase, frozen=True, tag="result"):
    value: Any


class ErrorIn(EventBase, frozen=True, tag="error"):
    error: ErrorInfo


class Effect(EventBase, frozen=True, tag="effect"):
    """A nondeterministic value the service observed: clock, randomness, environment, a file."""

    effect: str
    args: list[Any]
    value: Any
    error: ErrorInfo | None = None


class Output(EventBase, frozen=True, tag="output"):
    """Text the service printed or logged; recorded, never re-emitted on replay."""

    stream: str
    text: str


class Spawn(EventBase, frozen=True, tag="spawn"):
    """The service created a child service with ``import_service``."""

    child: str
    path: str
    name: str | None


class Source(EventBase, frozen=True, tag="source"):
    """An application file the service loaded after its header was written (a lazy import)."""

    file: BundleFile


class StateDigest(EventBase, frozen=True, tag="digest"):
    """What the service's globals held at this point (format 2): for each global that changed
    since the last digest, its hash and a short preview; ``removed``, the globals gone. A
    replay compares its own state here and names the first global that differs."""

    changed: dict[str, list[str]]
    removed: list[str] = []


class Switch(EventBase, frozen=True, tag="switch"):
    """The call that began at record ``call`` (a ``call-in``; 0: the top level) resumes here, after
    its call-out's wait, while the journal's last records were another call's (format 3; only a
    service that interleaves its calls writes one). Which call a record belongs to is otherwise
    implied: a ``call-in`` starts its call, and when a call ends the call that was running when it
    began runs again (``Schedule``)."""

    call: int


class Checkpoint(EventBase, frozen=True, tag="checkpoint"):
    """A snapshot of the service's state at a point where no call was open (format 4), verified
    when written: loaded into a fresh copy of the service's modules, it had this very digest.

    A restore replays the top level (records 1 to ``top_level`` - 1, which define the module's
    functions and classes), loads ``snapshot`` over the state they left, and replays only the
    records after the checkpoint; records between the top level and the checkpoint are not
    needed (``distdev journal compact`` leaves them out). What the skipped records told the
    service travels here too: the changes its code has (``patches``), the outcomes of the
    calls it answered that a caller may still re-send (``answered``), and how many records
    came before it in the journal it was first written in (``numbered``), so that calls it
    makes later are never numbered like earlier ones."""

    top_level: int
    snapshot: bytes
    digest: dict[str, list[str]]
    """The whole state digest here (not only what changed)."""
    patches: list[str]
    answered: list[list[Any]]
    """[caller, caller_seq, args, kwargs, ok, outcome] of answered calls that carried an id."""
    numbered: int
    """The seq this record had in the journal it was first written in."""
    sources: list[BundleFile] = []
    """The service's code where it differs from the header's bundle (an upgrade, a lazy
    import): the code the snapshot was taken with, whatever records a restore leaves out."""


Event = (Header | CallIn | Return | Raise | CallOut | ResultIn | ErrorIn | Effect | Output | Spawn
         | Source | StateDigest | Switch | Checkpoint)

EVENT_TYPES: dict[str, type[Event]] = {
    cls.__struct_config__.tag: cls  # type: ignore[misc]
    for cls in (
        Header, CallIn, Return, Raise, CallOut, ResultIn, ErrorIn, Effect, Output, Spawn, Source,
        StateDigest, Switch, Checkpoint
    )
}


READ_PAST = (Output, Source, StateDigest, Checkpoint)
"""Events a replay reads past, without code waiting for them (what was printed, a file the
code loaded, a state digest — or a checkpoint's whole one — to check): a replay — and a
debugger — never stops before one."""


def is_boundary(event: Event) -> bool:
    """Whether a replay can stop just before ``event`` (it is delivered to code waiting for
    it: a call, its outcome, an effect's answer). A ``switch`` only says whose record comes
    next: a stop lands before that record instead."""
    return not isinstance(event, (Header, Switch, *READ_PAST))


def describe(event: Event) -> str:
    """A one-line, human summary of an event (for ``inspect`` and divergence reports)."""
    match event:
        case Header():
            return f"header of {event.service} ({len(event.bundle)} files)"
        case CallIn():
            who = event.caller or "outside"
            return f"call in {event.export}({_args(event.args, event.kwargs)}) from {who}"
        case Return():
            return f"return {_short(event.value)}"
        case Raise():
            return f"raise {event.error.type}: {event.error.message}"
        case CallOut():
            return f"call out {event.target}.{event.export}({_args(event.args, event.kwargs)})"
        case ResultIn():
            return f"result {_short(event.value)}"
        case ErrorIn():
            return f"error {event.error.type}: {event.error.message}"
        case Effect():
            args = f"({_args(event.args, {})})" if event.args else "()"
            if event.error is not None:
                return f"effect {event.effect}{args} raised {event.error.type}"
            return f"effect {event.effect}{args} -> {_short(event.value)}"
        case Output():
            return f"output {event.stream} {_short(event.text)}"
        case Spawn():
            return f"spawn {event.child} from {event.path}"
        case Source():
            return f"source {event.file.path} ({event.file.sha256[:12]})"
        case Switch():
            return f"switch to the call of record {event.call}" if event.call else \
                "switch to the top level"
        case Checkpoint():
            return (f"checkpoint of {len(event.digest)} globals ({len(event.snapshot):,} bytes, "
                    f"{len(event.answered)} answered calls kept)")
        case StateDigest():
            gone = f", {len(event.removed)} gone" if event.removed else ""
            return f"digest of {len(event.changed)} changed globals{gone}"
    return type(event).__name__


def _args(args: list[Any], kwargs: dict[str, Any]) -> str:
    parts = [_short(a) for a in args] + [f"{k}={_short(v)}" for k, v in kwargs.items()]
    return ", ".join(parts)


def _short(value: Any, limit: int = 60) -> str:
    text = wire_repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
