"""The in-process fast path: the common call between two recording services, flattened.

A call from one service to another in the same process writes four records: ``call-out`` and
``result`` (or ``error``) in the caller's journal, ``call-in`` and ``return`` (or ``raise``) in
the callee's. The general path (``Service.call_out`` -> ``Recorder.call_out`` -> the router ->
``Service.handle_call`` -> ``Recorder.call_in``...) builds each record as a list and encodes it
whole. Here the same call is one function that encodes what both journals hold once — the
arguments, the result or the error — and writes each record from those bytes and from the
cached encodings of its constant strings (the kind, the target, the export, the caller and the
chain). The records are the general path's byte for byte (``tests/test_fast_path.py`` runs a
randomized workload both ways and compares the journals), which holds because a CBOR array is
its head followed by its items' encodings, each encoded alone.

It applies only where nothing but the journal bytes could tell it from the general path: both
services record (a ``Recorder``, not a replay or a detached tape), neither interleaves its calls
(an interleaving service's records follow the schedule model the general path keeps), the
caller's own code is running on this thread (not an effect, not a debugger's watch), and the
callee exports the name and is no function (``host.function``: its frozen globals are checked
around each call, on the general path). A call that arrives from the outside or over the
network is served the same way on the callee's side (``serve``, from ``Service.handle_call``).
Everything else — replay, detached tapes, interleaving, unknown exports, a call-out over the
network — takes the general path, which stays the reference.

Scalars of exact immutable types (``int``, ``float``, ``str``, ``bytes``, ``bool``, ``None``)
are passed to the callee as they are: their wire form is themselves, and nothing can change
them. Plain data (such scalars in lists and dicts with scalar keys) is copied once, in the walk
that encodes it (``membrane.plain_call_copy``): that copy is its wire form and what the callee
would rebuild from it, so the callee gets it, and a plain result goes back the same way. Other
values are copied through their wire form as on the general path.

Each proxy export binds once to a ``sender`` (its router's ``bind``), which keeps the target's
and export's encodings and checks at each call that the fast path applies. Of the thread's
context a call sets only what changes between two services' code on one chain: the service, and
the call key when the caller's call carries one (``call``); thread-local attributes cost a
lookup each.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, cast

from ..compartment import ServiceSide, enter_decimal, enter_from_outside, restore_decimal, state
from ..membrane import (
    NotPlain,
    Receiver,
    args_to_wire,
    call_arguments,
    dumps,
    error_info,
    from_wire,
    plain_call_copy,
    plain_copy,
    rebuild_exception,
)
from ._gate import CallGate
from ._tape import CallFailed, Recorder, Tape, listed

__all__ = ["ENABLED", "sender", "call", "serves", "serve"]

ENABLED = True
"""The internal switch: False sends every call down the general path (the byte-identical test
runs a workload both ways)."""


class Service(ServiceSide, Receiver, Protocol):
    """What the fast path uses of a service (``_service.Service``, which imports this
    module, is one)."""

    @property
    def tape(self) -> Tape: ...

    _tape: Tape  # read directly on the hot path: the property costs a call
    gate: CallGate
    host: dict[str, Any] | None
    _exports: dict[str, Callable[..., Any]] | None

    @property
    def is_function(self) -> bool: ...

    def _result_wire(self, result: Any, caller: str, export: str) -> Any: ...

    def _after_call(self) -> None: ...


_SCALARS = frozenset({int, float, str, bytes, bool, type(None)})


def _start(kind: str, length: int) -> bytes:
    """A record's payload up to its seq: the array's head (``length`` items) and the kind."""
    return bytes((0x80 + length,)) + dumps(kind)


_CALL_OUT = _start("call-out", 6)  # [kind, seq, target, export, args, kwargs]
_CALL_IN = _start("call-in", 8)  # [kind, seq, caller, chain, export, args, kwargs, caller_seq]
_RETURN = _start("return", 3)
_RESULT = _start("result", 3)
_RAISE = _start("raise", 3)
_ERROR = _start("error", 3)
_NO_KWARGS = dumps({})
_NO_CALLER_SEQ = dumps(None)

_encoded: dict[str, bytes] = {}
"""Target, export and caller strings -> their CBOR bytes (bounded, for code that makes up
names)."""


def _text(value: str) -> bytes:
    found = _encoded.get(value)
    if found is None:
        if len(_encoded) > 4096:
            _encoded.clear()
        found = _encoded[value] = dumps(value)
    return found


_last_call_in: tuple[str, str, str, bytes] = ("", "", "", b"")
"""The last call-in's caller, chain and export, and their encoding (``_handle``): the calls of
one chain come one after another, mostly to one export (a chain from the outside is new at
every call)."""


def sender(holder: Service, local: Callable[[str], Service | None], target: str, export: str,
           general: Callable[..., Any]) -> Callable[[tuple[Any, ...], dict[str, Any]], Any]:
    """What a proxy held by ``holder`` runs for ``target.export`` (bound once per export, as
    the proxy keeps it): the fast path when it applies at that call (``call``), else
    ``general`` (the router's ``call``). The target's and export's encodings are looked up
    here, once."""
    export_text = _text(export)
    named = _text(target) + export_text  # the call-out's target and export

    def send(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        # Whether the call may take the fast path: the caller's own code runs on this
        # thread (not an effect, not a debugger's watch), both services record and neither
        # interleaves, and the callee exports the name and is no function.
        callee = local(target)
        if callee is not None and ENABLED:
            thread = state
            exports = callee._exports
            if (thread.service is holder and not thread.effect_depth
                    and type(holder._tape) is Recorder and type(callee._tape) is Recorder
                    and not holder.gate.interleaving and not callee.gate.interleaving
                    and holder.gate.held() and exports is not None and export in exports
                    and (callee.host is None or not callee.is_function)):
                return call(holder, callee, export, args, kwargs, named, export_text)
        return general(holder, target, export, args, kwargs)

    return send


def call(caller: Service, callee: Service, export: str, args: tuple[Any, ...],
         kwargs: dict[str, Any], named: bytes | None = None,
         export_text: bytes | None = None) -> Any:
    """Call ``callee.export`` from ``caller`` (``sender`` saw that it may): the general path's
    outcome and records, from one encoding of what the two journals share. ``named``: the
    encodings of the target and export, ``export_text`` the export's (``sender`` keeps them).

    Of the thread's context only what the callee changes is set and put back: the service,
    and the call key (with its count of call-outs) when the caller's call has one. The chain
    is the caller's, and the effect depth is 0 on both sides (``sender`` saw it; ``in_effect``
    and ``observing`` put it back as they leave)."""
    direct = not kwargs
    if direct:
        for a in args:
            if type(a) not in _SCALARS:
                direct = False
                break
    args_wire: tuple[Any, ...] | list[Any]
    kwargs_wire: dict[str, Any]
    if direct:  # scalars only: their wire form is themselves
        args_wire, kwargs_wire = args, {}
        encoded = dumps(args) + _NO_KWARGS
    else:
        copied = _plain_arguments(args, kwargs)
        if copied is not None:  # plain data: one copy, the wire form and the callee's arguments
            args_wire, kwargs_wire, encoded = copied
            direct = True
        else:
            args_wire, kwargs_wire = args_to_wire(args, kwargs, callee.id, export)
            encoded = dumps(args_wire) + (dumps(kwargs_wire) if kwargs_wire else _NO_KWARGS)
    if export_text is None:
        export_text = _text(export)
    if named is None:
        named = _text(callee.id) + export_text
    thread = state
    chain: str = thread.chain  # type: ignore[assignment]  # set for running service code
    key = thread.call_key
    caller_writer = caller._tape.writer  # type: ignore[attr-defined]
    caller_writer.write_encoded(_CALL_OUT, named, encoded)
    gate = caller.gate
    gate.suspend()
    thread.service = callee
    try:
        if key is None:
            outcome, wire, record, plain = _handle(callee, caller.id, chain, export, export_text,
                                                   args_wire, kwargs_wire, encoded, None, direct)
        else:
            thread.callouts += 1  # this call-out's id, as next_callout_id counts it
            callouts = thread.callouts
            thread.call_key, thread.callouts = None, 0
            try:
                outcome, wire, record, plain = _handle(callee, caller.id, chain, export,
                                                       export_text, args_wire, kwargs_wire,
                                                       encoded, None, direct)
            finally:
                thread.call_key, thread.callouts = key, callouts
    finally:
        thread.service = caller
        gate.resume()
    if outcome is _RETURN:
        caller_writer.write_encoded(_RESULT, record)
        return wire if plain else from_wire(wire, caller)
    caller_writer.write_encoded(_ERROR, record)
    raise rebuild_exception(wire, callee.id, caller) from None


def serves(callee: Service) -> bool:
    """Whether ``Service.handle_call`` may serve a call to ``callee`` here (from the outside,
    or from a service over the network): a recording service that does not interleave."""
    return (ENABLED and type(callee._tape) is Recorder and not callee.gate.interleaving
            and callee._exports is not None
            and (callee.host is None or not callee.is_function))


def serve(callee: Service, caller: str, chain: str, export: str, args: list[Any],
          kwargs: dict[str, Any], caller_seq: int | str | None,
          plain: bytes | None = None) -> Any:
    """``Service.handle_call`` for a callee that ``serves`` says may: its outcome and
    records, with the arguments encoded once for the call-in record. ``plain``: the arguments
    are a plain copy nobody else holds (``membrane.plain_call_copy``) and these are their
    bytes, so the callee may have them as they are."""
    if plain is not None:
        direct, encoded = True, plain
    else:
        direct = not kwargs
        if direct:  # scalars only: passed as they are (the arguments stay the wire's own)
            for a in args:
                if type(a) not in _SCALARS:
                    direct = False
                    break
        encoded = dumps(args) + (dumps(kwargs) if kwargs else _NO_KWARGS)
    thread = state
    saved = (thread.service, thread.chain, thread.effect_depth, thread.call_key,
             thread.callouts)
    if saved[0] is None:
        enter_from_outside()
    thread.service, thread.chain = callee, chain
    if saved[2]:
        thread.effect_depth = 0
    key = None if caller_seq is None else f"{caller}:{caller_seq}"
    if key is not None or saved[3] is not None:
        thread.call_key, thread.callouts = key, 0
    try:
        outcome, wire, _, _ = _handle(callee, caller, chain, export, _text(export), args,
                                      kwargs, encoded, caller_seq, direct)
    finally:
        thread.service, thread.chain = saved[0], saved[1]
        if saved[2]:
            thread.effect_depth = saved[2]
        if key is not None or saved[3] is not None:
            thread.call_key, thread.callouts = saved[3], saved[4]
    if outcome is _RETURN:
        return wire
    raise CallFailed(wire)


def _handle(callee: Service, caller: str, chain: str, export: str, export_text: bytes,
            args: tuple[Any, ...] | list[Any], kwargs: dict[str, Any], encoded: bytes,
            caller_seq: int | str | None, direct: bool) -> tuple[bytes, Any, bytes, bool]:
    """The callee's side (``Service.handle_call``'s, flattened), the thread's context already
    the callee's: ``(_RETURN, the result's wire form, its bytes, whether that wire form is
    plain data the caller may keep as it is)`` or ``(_RAISE, ErrorInfo, its bytes, False)``,
    each record written here. ``args`` and ``kwargs`` are the wire forms; ``direct``: they
    are the callee's own arguments as they are (scalars, or a plain copy nobody else holds),
    else they are rebuilt from the wire (``call_arguments``)."""
    global _last_call_in
    writer = callee._tape.writer  # type: ignore[attr-defined]
    gate = callee.gate
    gate.enter(chain)
    previous_decimal = None
    try:
        last = _last_call_in  # the caller, chain and export encoded, as the last call had them
        # Identity: a chain's calls pass the same strings along (equal ones encode anew).
        if last[1] is chain and last[0] is caller and last[2] is export:
            head = last[3]
        else:
            head = _text(caller) + dumps(chain) + export_text
            _last_call_in = (caller, chain, export, head)
        writer.write_encoded(_CALL_IN, head, encoded,
                             _NO_CALLER_SEQ if caller_seq is None else dumps(caller_seq))
        previous_decimal = enter_decimal(callee)
        try:
            function = callee._exports[export]  # type: ignore[index]
            if not direct:  # then ``args`` is a list (a tuple is a direct call's scalars)
                call_args, call_kwargs = call_arguments(function, cast("list[Any]", args),
                                                        kwargs, callee)
                result = function(*call_args, **call_kwargs)
            elif kwargs:
                result = function(*args, **kwargs)
            else:
                result = function(*args)
            wire = result if type(result) in _SCALARS else _plain_result(result)
            plain = wire is not _NOT_PLAIN
            if not plain:
                wire = callee._result_wire(result, caller, export)
        except Exception as exc:
            info = error_info(exc)
            record = dumps(listed(info))
            writer.write_encoded(_RAISE, record)
            if caller_seq is not None:
                _answered(callee, caller, caller_seq, cast("list[Any]", args), kwargs, False,
                          info)
            callee._after_call()
            return _RAISE, info, record, False
        record = dumps(wire)
        writer.write_encoded(_RETURN, record)
        if caller_seq is not None:
            _answered(callee, caller, caller_seq, cast("list[Any]", args), kwargs, True, wire)
        callee._after_call()
        return _RETURN, wire, record, plain
    finally:
        if previous_decimal is not None:
            restore_decimal(previous_decimal)
        gate.exit()


_NOT_PLAIN = object()


def _plain_arguments(args: tuple[Any, ...], kwargs: dict[str, Any]
                     ) -> tuple[list[Any], dict[str, Any], bytes] | None:
    """``plain_call_copy``, or None for arguments that are not plain data (which then go
    through their wire form, outside this handler: an error there has no NotPlain context)."""
    try:
        return plain_call_copy(args, kwargs)
    except (NotPlain, RecursionError):
        return None


def _plain_result(result: Any) -> Any:
    """``plain_copy`` of a result, or ``_NOT_PLAIN``."""
    try:
        return plain_copy(result)
    except (NotPlain, RecursionError):
        return _NOT_PLAIN


def _answered(callee: Service, caller: str, caller_seq: int | str, args: list[Any],
              kwargs: dict[str, Any], ok: bool, outcome: Any) -> None:
    """Tell the recorder's ``answered`` (a checkpoint keeps what callers may re-send) of a
    call that carried an id, as ``Recorder.returned``/``raised`` would."""
    answered = callee._tape.answered  # type: ignore[attr-defined]
    if answered is not None:
        answered(caller, caller_seq, args, kwargs, ok, outcome)
