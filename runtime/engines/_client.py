"""The calling side: authenticated connections to services, and the transport a live service
uses to reach the others.

Each thread keeps one connection per target, so a call chain that comes back into this process
(A -> B -> A) arrives on a connection of its own and re-enters the service. A call whose
connection breaks (the callee crashed) is re-sent, with the same call id, once the supervisor
has restarted the callee; the callee answers a call it already ran from its journal.

A service proves itself with its own keys (``_keys.ServiceKeys``): it reaches only the services
it holds a proxy to after its build.

Every way a call can fail here is an outcome like a callee's exception: the caller's journal
records it (the tape journals whatever the transport raises) and a replay answers the same.
A refusal is a ``ServiceUnavailableError`` that says why; no answer within the call timeout a
``CallTimeoutError`` that says whether the callee may have run the call (a callee never starts
one after its caller's deadline, which travels with it); a service its supervisor reports as
crash-looping or stopped fails at once with that reason; a call too large for a frame is
refused before anything is sent, naming the argument.
"""

from __future__ import annotations

import itertools
import os
import socket
import threading
import time
import uuid
from collections.abc import Collection, Mapping
from typing import Any, NoReturn

import cbor2

from ..compartment import in_effect, state
from ..errors import CallTimeoutError, MembraneError, ServiceUnavailableError
from ..membrane import ErrorInfo, error_info
from ..resources import VALUE_EXPORT as SECRET_VALUE
from ..service import CallFailed, Service
from . import _wire as wire
from ._keys import Credentials, ServiceKeys, as_credentials
from ._wire import Auth, Call, Challenge, Refused, Reply, Welcome

CALL_TIMEOUT = float(os.environ.get("DISTDEV_CALL_TIMEOUT", "300"))
"""Seconds a call may take, re-sends included, before it fails."""


_serving = threading.local()
"""``deadline``: the wall-clock deadline of the incoming call this thread is running, if any."""
_NO_KWARGS = cbor2.dumps({})
"""The encoded keyword arguments of a call that has none (most calls)."""
_INNER_SHARE = 0.9
"""Of the time an incoming call has left, what a call it makes may take: the inner call fails
first, so its caller hears why (which service did not answer) before its own caller gives up."""


def serving_until(deadline: float | None) -> None:
    """The incoming call this thread runs from now on has a caller that waits until
    ``deadline`` (``time.time()``; None: no deadline): the calls it makes are due before that.
    For a server's thread, which runs one incoming call at a time and nothing of a service's
    in between, so each call sets it and none needs to put back what was there (a call that
    comes back into the service arrives on a connection, and a thread, of its own)."""
    _serving.deadline = deadline


def _call_deadline() -> float:
    """When a call made now must have answered (``time.monotonic()``)."""
    now = wire.monotonic()
    deadline = now + CALL_TIMEOUT
    incoming: float | None = getattr(_serving, "deadline", None)
    if incoming is not None:
        deadline = min(deadline, now + max(0.0, incoming - wire.wall_time()) * _INNER_SHARE)
    return deadline


class AuthenticationError(ServiceUnavailableError):
    """The service refused this client's proof: a wrong key, a caller it does not know, or a
    service that holds no proxy to it. ``reason`` is what the service said."""

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason or message


class StaleAddress(ConnectionRefusedError):
    """Another service listens where this one was (a restarted service moved on): look the
    address up again."""


class NotReady(ServiceUnavailableError):
    """The service's supervisor answered in its place: the service is not serving.
    ``lasting``: it will not be soon (crash-looping, stopped), so a caller does not wait."""

    lasting = True

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Restarting(NotReady, ConnectionRefusedError):
    """Not serving for a moment (it is being restarted): like a refused connection, worth
    trying again, as any client that re-sends on a refused connection does."""

    lasting = False


NOT_READY_PREFIX = "not-ready:"
LASTING_PREFIX = "not-ready-lasting:"
"""How the reason starts when a service's supervisor refuses a call in its place: the rest says
why the service is not serving (``local._standin``)."""


def _delivered(exc: BaseException) -> bool:
    """Whether the call had reached the callee in full when ``exc`` was raised."""
    return bool(getattr(exc, "delivered", False))


class Connection:
    """One authenticated connection to one service; one call at a time.

    ``credentials`` are the caller's keys (bytes: the deployment's master secret, the
    operator's); ``service``, when given, is the service expected at ``address``."""

    def __init__(self, address: str, credentials: Credentials | bytes, caller: str,
                 timeout: float | None, *, service: str | None = None) -> None:
        family, sockaddr = wire.parse_address(address)
        credentials = as_credentials(credentials)
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        handshake = wire.HANDSHAKE_SECONDS if timeout is None else min(timeout,
                                                                      wire.HANDSHAKE_SECONDS)
        # A Unix connect with a timeout is non-blocking and fails at once (EAGAIN) when the
        # server's backlog is full; a blocking one waits its turn. TCP's retries its handshake.
        self.sock.settimeout(None if family == socket.AF_UNIX else handshake)
        try:
            self.sock.connect(sockaddr)
            self.sock.settimeout(handshake)
            if family == socket.AF_INET:
                self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            challenge = wire.receive(self.sock, wire.HANDSHAKE_FRAME)
            if not isinstance(challenge, Challenge):
                raise AuthenticationError(f"{address} did not start a distdev handshake")
            if service is not None and challenge.service != service:
                raise StaleAddress(f"{address} is {challenge.service}, not {service}")
            wire.send(self.sock, Auth(caller, _proof(credentials, challenge, caller)))
            answer = wire.receive(self.sock, wire.HANDSHAKE_FRAME)
        except BaseException:
            self.sock.close()
            raise
        if isinstance(answer, Refused):
            self.sock.close()
            raise AuthenticationError(
                f"{challenge.service} refused this client: {answer.reason}. "
                f"{credentials.remedy}".rstrip(), answer.reason)
        assert isinstance(answer, Welcome)
        self.service = answer.service
        self.channel = wire.Channel(self.sock)
        self._ids = itertools.count(1)

    def call(self, caller: str, chain: str, caller_seq: int | str | None, export: str,
             args: list[Any], kwargs: dict[str, Any], deadline: float | None = None) -> Any:
        """Send one call; the result's wire form, or ``CallFailed`` with the remote error.

        ``deadline`` (``time.monotonic()``) bounds the wait for the answer, and reaches the
        callee as wall-clock time. An exception raised once the call has been sent in full
        carries ``delivered = True``: the callee may have run it."""
        encoded_args = cbor2.dumps(args)
        encoded_kwargs = cbor2.dumps(kwargs) if kwargs else _NO_KWARGS
        if len(encoded_args) + len(encoded_kwargs) + wire.FRAME_OVERHEAD > wire.MAX_FRAME:
            _refuse_oversized(self.service, export, args, kwargs,
                              len(encoded_args) + len(encoded_kwargs))
        call_id = next(self._ids)
        if deadline is None:
            wall_deadline = None
        else:
            remaining = deadline - wire.monotonic()
            if remaining <= 0:
                raise TimeoutError("no time left for the call")
            wall_deadline = wire.wall_time() + remaining
        self.channel.send(Call(call_id, caller, chain, caller_seq, export, encoded_args,
                               encoded_kwargs, wall_deadline), deadline)
        try:
            return self._answer(call_id, deadline)
        except NotReady:
            raise  # its supervisor answered: the service never saw the call
        except Exception as exc:
            exc.delivered = True  # type: ignore[attr-defined]
            raise

    def _answer(self, call_id: int, deadline: float | None) -> Any:
        reply = self.channel.receive(wire.MAX_FRAME, deadline)
        if type(reply) is not Reply or reply.id != call_id:
            raise self._not_an_answer(reply)
        value = cbor2.loads(reply.value)
        if reply.ok:
            return value
        raise CallFailed(ErrorInfo(*value))

    def _not_an_answer(self, reply: wire.Message) -> ServiceUnavailableError:
        """What a frame other than this call's reply means: a refusal, or a broken peer."""
        if isinstance(reply, Refused):
            if reply.reason.startswith(NOT_READY_PREFIX):
                return Restarting(reply.reason.removeprefix(NOT_READY_PREFIX))
            if reply.reason.startswith(LASTING_PREFIX):
                return NotReady(reply.reason.removeprefix(LASTING_PREFIX))
            return ServiceUnavailableError(f"{self.service} refused the call: {reply.reason}")
        return ServiceUnavailableError(f"{self.service} answered out of turn")

    def close(self) -> None:
        self.sock.close()


def _refuse_oversized(target: str, export: str, args: list[Any], kwargs: dict[str, Any],
                      size: int) -> NoReturn:
    """Refuse, before sending anything, a call whose arguments (``size`` bytes encoded) would
    not fit in a frame, naming the largest argument (a frame over the limit would only be
    refused by the callee)."""
    sizes = [(len(cbor2.dumps(value)), f"argument {i + 1}") for i, value in enumerate(args)]
    sizes += [(len(cbor2.dumps(value)), f"argument {name!r}") for name, value in kwargs.items()]
    largest, which = max(sizes)
    raise MembraneError(
        f"the call {target}.{export} carries {size:,} bytes ({which}: {largest:,} bytes), over "
        f"the {wire.MAX_FRAME:,}-byte limit of a call between processes; pass a reference "
        "instead (a file path, a key in a store), or raise the limit for the whole deployment "
        "with DISTDEV_MAX_FRAME"
    )


def _proof(credentials: Credentials, challenge: Challenge, caller: str) -> bytes:
    """The answer to ``challenge``; empty without a key to that service, so that the service
    refuses it and logs who tried (there is nothing to prove without a capability)."""
    key = credentials.key_to(challenge.service)
    return b"" if key is None else wire.proof(key, challenge.nonce, caller)


class Network:
    """The live transport: calls from this process's service to the deployment's others."""

    def __init__(self, me: str, addresses: Mapping[str, str], exports: dict[str, list[str]],
                 keys: ServiceKeys) -> None:
        self.me = me
        self.addresses = addresses
        self._exports = {k: frozenset(v) for k, v in exports.items()}
        self.keys = keys
        self._local = threading.local()

    def exports(self, target: str) -> Collection[str] | None:
        return self._exports.get(target)

    def send(self, caller: Service, target: str, export: str, args: list[Any],
             kwargs: dict[str, Any], call_seq: int | str | None) -> Any:
        # A live service's calls always run inside an incoming call, which has a chain; a new
        # chain per call is the safe answer if one ever does not (never a shared id).
        chain = state.chain or f"{self.me}-{uuid.uuid4().hex}"
        with in_effect():  # the transport's sockets are distdev's, not the service's
            try:
                return self.call(target, chain, call_seq, export, args, kwargs)
            except AuthenticationError as refused:  # the call's outcome: journaled, replayed
                why = ServiceUnavailableError(f"{self.me} may not call {target}: {refused.reason}")
                raise CallFailed(error_info(why)) from None

    def reveal(self, secret: str, version: int) -> str:
        """A version of a secret's value, from the resource that holds it: asked outside the
        service's journal (which holds the reference its ``reveal`` answered)."""
        with in_effect():
            value = self.call(secret, state.chain or f"{self.me}-{uuid.uuid4().hex}", None,
                              SECRET_VALUE, [version], {})
        if not isinstance(value, str):
            raise ServiceUnavailableError(f"{secret} answered no secret value")
        return value

    def call(self, target: str, chain: str, call_seq: int | str | None, export: str,
             args: list[Any], kwargs: dict[str, Any]) -> Any:
        """Call ``target``, re-sending the same call until it answers or the time is up.

        The address is looked up again before each attempt: an engine whose restarted
        services listen somewhere new (Ray) hands in a mapping that follows them."""
        deadline = _call_deadline()
        started = wire.monotonic()
        delay = 0.05
        delivered = False  # whether any attempt reached the callee in full
        while True:
            address = self.addresses.get(target)
            if address is None:
                raise ServiceUnavailableError(f"no service {target!r} in this deployment")
            try:
                connection = self._connection(target, address, deadline)
                return connection.call(self.me, chain, call_seq, export, args, kwargs, deadline)
            except NotReady as not_ready:
                self._drop(target)
                if not_ready.lasting:
                    raise ServiceUnavailableError(
                        f"{target} is not available: {not_ready.reason}") from None
                last: BaseException = not_ready
            except TimeoutError as exc:
                self._drop(target)
                delivered = delivered or _delivered(exc)
                raise self._timed_out(target, export, deadline - started, delivered) from None
            except (OSError, EOFError, wire.FrameError) as exc:
                self._drop(target)
                delivered = delivered or _delivered(exc)
                if call_seq is None and delivered:  # without an id, a re-send could run it twice
                    raise ServiceUnavailableError(
                        f"{target} did not answer ({exc}); the call may or may not have run"
                    ) from None
                last = exc
            if wire.monotonic() + delay > deadline:
                raise self._timed_out(target, export, deadline - started, delivered,
                                      last) from None
            time.sleep(delay)
            delay = min(delay * 2, 1.0)

    @staticmethod
    def _timed_out(target: str, export: str, waited: float, delivered: bool,
                   last: BaseException | None = None) -> CallTimeoutError:
        why = f" (last: {last})" if last is not None else ""
        within = f"{waited:.3g} s"
        if not delivered:
            return CallTimeoutError(
                f"{target}.{export} did not answer within {within}{why}; it never "
                "received the call, so it did not run it", may_have_run=False)
        return CallTimeoutError(
            f"{target}.{export} did not answer within {within}{why}. It had received "
            "the call, so it may have run it or still run it (at most once: it never starts a "
            "call after its caller's deadline, and its own journal says whether it ran)",
            may_have_run=True)

    def _connection(self, target: str, address: str, deadline: float) -> Connection:
        pool: dict[str, Connection] = self._local.__dict__.setdefault("pool", {})
        connection = pool.get(target)
        if connection is None:
            remaining = deadline - wire.monotonic()
            if remaining <= 0:
                raise TimeoutError("no time left to connect")
            connection = pool[target] = Connection(address, self.keys, self.me, remaining,
                                                   service=target)
        return connection

    def _drop(self, target: str) -> None:
        pool: dict[str, Connection] = self._local.__dict__.setdefault("pool", {})
        connection = pool.pop(target, None)
        if connection is not None:
            connection.close()

    def close(self) -> None:
        pool: dict[str, Connection] = self._local.__dict__.get("pool", {})
        for connection in pool.values():
            connection.close()
        pool.clear()
