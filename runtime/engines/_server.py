"""The serving side: a service process's socket server.

A thread per connection. Before a peer has proven who it is it gets one small frame, under a
deadline; anything else closes the connection and is logged. A service proves itself with the
key of its calls to this one, which it holds only if it holds a proxy to this one after the
build; a client outside the deployment with this service's outside key (``_keys``). Every call on
the connection must then come from the caller that proved itself. Malformed, truncated or
oversized frames close that connection only: no service code has run for them.
"""

from __future__ import annotations

import hmac
import os
import socket
import socketserver
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

import cbor2
import msgspec

from ..compartment import state
from ..errors import CallTimeoutError, MembraneError
from ..membrane import error_info
from ..service import CallFailed, Service
from . import _wire as wire
from ._client import serving_until
from ._durable import GroupCommit
from ._keys import ServiceKeys
from ._restore import DedupTable, StillRunning
from ._wire import Auth, Call, Challenge, Refused, Reply, Welcome


class _UnixServer(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True
    request_queue_size = socket.SOMAXCONN  # the default 5 refuses a burst of clients


class _TCPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = socket.SOMAXCONN


def listen(address: str, serve: Callable[[socket.socket], None]) -> socketserver.TCPServer:
    """A threading server on ``address`` that hands each connection to ``serve``; a Unix
    socket file left there by an earlier process is replaced, and only its owner may connect."""
    family, sockaddr = wire.parse_address(address)

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            serve(self.request)

    server_class: Any
    if family == socket.AF_UNIX:
        if isinstance(sockaddr, str) and os.path.exists(sockaddr):
            os.unlink(sockaddr)
        server_class = _UnixServer
    else:
        server_class = _TCPServer
    server: socketserver.TCPServer = server_class(sockaddr, Handler)
    if family == socket.AF_UNIX:
        os.chmod(sockaddr, 0o600)  # type: ignore[arg-type]
    return server


class Callee(Protocol):
    """What a server serves: a restored service, or a resource (``distdev.resources``)."""

    id: str

    def handle_call(self, caller: str, chain: str, export: str, args: list[Any],
                    kwargs: dict[str, Any], caller_seq: int | str | None = None) -> Any: ...


class Durability(Protocol):
    def wait_durable(self) -> None: ...


class ServiceServer:
    """Serves one restored, live service (or a resource) on ``address``."""

    def __init__(self, service: Service | Callee, address: str, keys: ServiceKeys,
                 commit: GroupCommit | Durability, dedup: DedupTable,
                 log: Callable[[str], None],
                 after_reply: Callable[[], object] | None = None) -> None:
        """``after_reply``: run on a connection's thread once each answer has left (the
        checkpoint a call found due, ``LiveService.after_reply``)."""
        self.service = service
        self.gatekeeper = Gatekeeper(service.id, keys, log)
        self.commit = commit
        self.dedup = dedup
        self.log = log
        self.server = listen(address, self.serve_connection)
        self.after_reply = after_reply

    def serve_forever(self) -> None:
        self.server.serve_forever(poll_interval=0.2)

    def shutdown(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def serve_connection(self, sock: socket.socket) -> None:
        try:
            caller = self.gatekeeper.admit(sock)
            if caller is None:
                return
            # A caller's wait for its answer naps through a durable sync; a callee's wait for
            # the next call is as long as its caller makes it, and a callee thread woken from a
            # nap finds the calls in flight on the others holding the interpreter's lock (with
            # 16 in flight, naps here cost a durable deployment 7% of its throughput).
            channel = wire.Channel(sock, naps=False)
            # What a call's end finds due (a checkpoint) waits for its answer to leave, so
            # that the caller does not wait for it too.
            after_reply = self.after_reply
            state.answers_after = after_reply is not None
            while True:
                message = channel.receive()
                if type(message) is not Call:
                    raise wire.FrameError(f"expected a call, got a {type(message).__name__}")
                if message.caller != caller:
                    raise wire.FrameError(f"a forged caller: a call from {message.caller!r} on "
                                          f"a connection {caller!r} authenticated")
                channel.send(self._answer(message))
                if after_reply is not None:
                    after_reply()
        except EOFError:
            pass
        except wire.FrameError as exc:
            self.log(f"closed a connection: {exc}")
            _try_send(sock, Refused(str(exc)))
        except OSError:
            pass

    def _answer(self, call: Call) -> Reply:
        try:
            args = cbor2.loads(call.args)
            kwargs = {} if call.kwargs == _NO_KWARGS else cbor2.loads(call.kwargs)
        except Exception as exc:
            raise wire.FrameError(f"a call whose arguments are not CBOR ({exc})") from None
        if type(args) is not list or type(kwargs) is not dict or kwargs and not all(
            type(k) is str for k in kwargs
        ):
            raise wire.FrameError("a call whose arguments are not a list and a dict of names")
        if call.caller_seq is None:  # no id: nothing to claim, and a re-send is a new call
            return self._run(call, args, kwargs)
        try:
            known = self.dedup.claim(call.caller, call.caller_seq, args, kwargs,
                                     deadline=call.deadline)
        except StillRunning:
            late = CallTimeoutError(f"the call is still running in {self.service.id}, from "
                                    "before it was sent again", may_have_run=True)
            return self._reply(call, False, error_info(late))
        if known is not None:  # a re-sent call that ran, or ran on meanwhile: its outcome
            ok, outcome = known
            return self._reply(call, ok, outcome)
        try:
            return self._run(call, args, kwargs)
        finally:
            self.dedup.abandon(call.caller, call.caller_seq)  # if it ended without an outcome

    def _run(self, call: Call, args: list[Any], kwargs: dict[str, Any]) -> Reply:
        deadline = call.deadline
        if deadline is not None and wire.wall_time() > deadline:
            # Its caller has stopped waiting and told its code the call timed out: starting it
            # now would do what the caller's journal says may not have happened.
            self.log(f"did not start {call.export} for {call.caller}: it arrived "
                     f"{wire.wall_time() - deadline:.1f} s after its caller's deadline")
            late = CallTimeoutError(f"the call reached {self.service.id} after its caller's "
                                    "deadline; it did not run", may_have_run=False)
            return self._reply(call, False, error_info(late))
        serving_until(deadline)
        try:
            result = self.service.handle_call(call.caller, call.chain, call.export, args,
                                              kwargs, call.caller_seq)
            ok, outcome = True, result
        except CallFailed as failed:
            ok, outcome = False, failed.info
        self.commit.wait_durable()  # the reply is a promise that the call happened
        self.dedup.put(call.caller, call.caller_seq, args, kwargs, ok, outcome)
        if deadline is not None and wire.wall_time() > deadline:
            # The reconciliation the caller cannot make itself: its journal holds a timeout,
            # this one the call's outcome, and this log says which call that is.
            self.log(f"ran {call.export} for {call.caller} (call {call.caller_seq}) to its end "
                     f"{wire.wall_time() - deadline:.1f} s after its caller's deadline: the "
                     "caller was told it timed out; this journal holds what ran")
        return self._reply(call, ok, outcome)

    def _reply(self, call: Call, ok: bool, outcome: Any) -> Reply:
        """The reply to ``call``; a result too large for a frame is answered with the error
        that says so (the caller would only see its connection closed)."""
        value = cbor2.dumps(_outcome_wire(ok, outcome))
        if len(value) + wire.FRAME_OVERHEAD > wire.MAX_FRAME:
            too_large = MembraneError(
                f"the value returned by {self.service.id}.{call.export} is {len(value):,} "
                f"bytes, over the {wire.MAX_FRAME:,}-byte limit of a call between processes; "
                "return a reference instead (a file path, a key in a store), or raise the "
                "limit for the whole deployment with DISTDEV_MAX_FRAME")
            self.log(str(too_large))
            value = cbor2.dumps(_outcome_wire(False, error_info(too_large)))
            ok = False
        return Reply(call.id, ok, value)


class Gatekeeper:
    """The handshake a service's address answers with: who may call, proven by key. Shared by
    the service's server and by what answers in its place while it is down (``local``'s
    stand-in), so that nobody learns anything of a service without a key to it."""

    def __init__(self, service_id: str, keys: ServiceKeys, log: Callable[[str], None]) -> None:
        self.service_id = service_id
        self.keys = keys
        self.log = log

    def admit(self, sock: socket.socket) -> str | None:
        """Challenge the peer on ``sock``; the caller it proved to be, or None (refused,
        told why, and logged)."""
        sock.settimeout(wire.HANDSHAKE_SECONDS)
        nonce = wire.new_nonce()
        wire.send(sock, Challenge(self.service_id, nonce))
        try:
            auth = wire.receive(sock, wire.HANDSHAKE_FRAME)
        except (TimeoutError, wire.FrameError) as exc:
            self.log(f"refused a peer that did not authenticate ({exc})")
            _try_send(sock, Refused("authenticate first"))
            return None
        if not isinstance(auth, Auth):
            self.log(f"refused a peer that did not authenticate (it sent a "
                     f"{type(auth).__name__} first)")
            _try_send(sock, Refused("authenticate first"))
            return None
        refusal = self._refusal(auth, nonce)
        if refusal is not None:
            self.log(refusal.logged)
            _try_send(sock, Refused(refusal.told))
            return None
        sock.settimeout(None)
        wire.send(sock, Welcome(self.service_id))
        return auth.caller

    def _refusal(self, auth: Auth, nonce: bytes) -> _Refusal | None:
        """None if ``auth`` proves its caller; else why it is refused."""
        if self.keys.is_service(auth.caller):
            return self._service_refusal(auth, nonce)
        if _proves(self.keys.outside, auth, nonce):
            return None
        return _Refusal(f"refused an unauthenticated peer (claimed caller {auth.caller!r})",
                        "wrong or missing proof of the deployment secret")

    def _service_refusal(self, auth: Auth, nonce: bytes) -> _Refusal | None:
        """None if ``auth`` proves the service it names, holding a capability to this one."""
        caller, me = auth.caller, self.service_id
        key = self.keys.key_from(caller)
        if key is None:
            return _Refusal(
                f"refused a call from {caller}: it holds no proxy to {me}, so it may not call it",
                f"{caller} holds no proxy to {me} after the build (a proxy handed over at "
                "runtime is no capability)")
        if _proves(key, auth, nonce):
            return None
        if _proves(self.keys.outside, auth, nonce):
            return _Refusal(f"refused the operator's key for {caller}: it proves a client, not "
                            "a service",
                            f"{caller} is a service, proven by its own key only: call as a "
                            "client id that names no service")
        return _Refusal(f"refused a forged caller: a peer claimed to be {caller} without its key",
                        f"the proof is not {caller}'s: only {caller} can call as {caller}")


_NO_KWARGS = b"\xa0"
"""The CBOR of ``{}``: the keyword arguments of most calls, decoded without a call to cbor2."""


def _outcome_wire(ok: bool, outcome: Any) -> Any:
    return outcome if ok else list(msgspec.structs.astuple(outcome))


class _Refusal(NamedTuple):
    logged: str
    """What the callee's log says."""
    told: str
    """What the peer is told."""


def _proves(key: bytes, auth: Auth, nonce: bytes) -> bool:
    return hmac.compare_digest(auth.proof, wire.proof(key, nonce, auth.caller))


def _try_send(sock: socket.socket, message: Refused) -> None:
    try:
        wire.send(sock, message)
    except OSError:
        pass
