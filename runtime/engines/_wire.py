"""The local engine's wire: length-prefixed msgspec frames and the handshake.

A frame is a 4-byte big-endian length and that many bytes of MessagePack: one tagged, array-like
msgspec Struct. Values that cross (arguments, results, errors) ride inside as the CBOR of their
wire form (``_marshal``), the same bytes a journal stores.

A connection starts with a challenge: the server sends a random nonce and the client answers
HMAC-SHA256(key, nonce + caller id), where the key is the one of that caller's calls to that
service (``_keys``). No key crosses. Until that answer checks out, the server reads at most one
small frame, with a deadline, and runs no service code.

After the handshake each end reads and writes through a ``Channel``: a frame leaves in one system
call and arrives, where it fits the channel's buffer, in one ``recv``; a receive polls the socket
for a moment before it blocks (``_poll``), by non-blocking ``recv``s, so that the one that
catches the frame has read it; and a wait is bounded by the kernel's socket timeouts
(``SO_RCVTIMEO``, ``SO_SNDTIMEO``), which cost nothing per call, where a Python-level socket
timeout adds a ``poll`` system call before every ``recv``.

The transport times its waits with the machine's clocks (``monotonic``, ``wall_time``,
``thread_time``, ``process_time``), never with the ones a service's code sees: in a service's
process those are the compartment's journaled stand-ins, which cost a lookup of the acting
service on every call and would only pass it through to the real clock here.
"""

from __future__ import annotations

import hashlib
import hmac
import inspect
import os
import select
import socket
import struct
import time
from collections.abc import Callable

import msgspec

from ._poll import BusyPoll, precise_timers

MAX_FRAME = int(os.environ.get("DISTDEV_MAX_FRAME", 16 * 1024 * 1024))
"""Frames larger than this are refused (the connection is closed); a caller refuses to send
one (``FrameTooLarge``). Every process of a deployment inherits the same setting."""
FRAME_OVERHEAD = 64 * 1024
"""Room left in a frame for a call's ids and names beside its arguments."""
HANDSHAKE_FRAME = 4096
HANDSHAKE_SECONDS = 10.0

monotonic: Callable[[], float] = inspect.unwrap(time.monotonic)
"""``time.monotonic`` itself, even where the compartment has replaced it (its stand-in keeps
the real clock as ``__wrapped__``)."""
wall_time: Callable[[], float] = inspect.unwrap(time.time)
thread_time: Callable[[], float] = inspect.unwrap(time.thread_time)
process_time: Callable[[], float] = inspect.unwrap(time.process_time)
_select = inspect.unwrap(select.select)
"""``select.select`` itself: the compartment refuses it to a service's code, and a call out
of a service waits on its thread."""
_SELECTABLE = 1024
"""``select`` takes file descriptors below ``FD_SETSIZE`` only; a socket above it never naps
(it polls, or blocks, as before naps)."""


class _Message(msgspec.Struct, frozen=True, array_like=True, tag_field="kind"):
    pass


class Challenge(_Message, frozen=True, tag="challenge"):
    service: str
    nonce: bytes


class Auth(_Message, frozen=True, tag="auth"):
    caller: str
    proof: bytes


class Welcome(_Message, frozen=True, tag="welcome"):
    service: str


class Refused(_Message, frozen=True, tag="refused"):
    reason: str


class Call(_Message, frozen=True, tag="call"):
    id: int
    caller: str
    chain: str
    caller_seq: int | str | None
    export: str
    args: bytes
    kwargs: bytes
    deadline: float | None = None
    """Wall-clock time (``time.time()``) after which the caller no longer waits: a callee
    does not start a call that reaches it later."""


class Reply(_Message, frozen=True, tag="reply"):
    id: int
    ok: bool
    value: bytes


Message = Challenge | Auth | Welcome | Refused | Call | Reply

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Message)


class FrameError(Exception):
    """A frame that cannot be read: too large, malformed, or cut short."""


def proof(key: bytes, nonce: bytes, caller: str) -> bytes:
    """What ``caller`` answers a challenge with, holding ``key``."""
    return hmac.new(key, nonce + caller.encode(), hashlib.sha256).digest()


def new_nonce() -> bytes:
    return os.urandom(32)


def send(sock: socket.socket, message: _Message) -> None:
    body = _encoder.encode(message)
    sock.sendall(len(body).to_bytes(4, "big") + body)


def _read_exactly(sock: socket.socket, n: int) -> bytes:
    chunks = []
    while n:
        chunk = sock.recv(min(n, 1 << 20))
        if not chunk:
            raise EOFError("the peer closed the connection")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def receive(sock: socket.socket, limit: int = MAX_FRAME) -> Message:
    """Read one frame. ``EOFError`` at a clean end; ``FrameError`` for anything malformed."""
    head = sock.recv(4)
    if not head:
        raise EOFError("the peer closed the connection")
    if len(head) < 4:
        try:
            head += _read_exactly(sock, 4 - len(head))
        except EOFError:
            raise FrameError("the frame's length is cut short") from None
    size = int.from_bytes(head, "big")
    if size > limit:
        raise FrameError(f"a frame of {size} bytes is over the limit of {limit}")
    try:
        body = _read_exactly(sock, size)
    except EOFError:
        raise FrameError("the frame is cut short") from None
    try:
        message: Message = _decoder.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise FrameError(f"a malformed frame ({exc})") from None
    return message


class Channel:
    """One end of a connection after its handshake, used by one thread at a time.

    ``deadline`` (``time.monotonic()``, None: none) bounds a send or a receive: past it, the
    wait raises ``TimeoutError``, exactly as a socket timeout did."""

    BUFFER = 64 * 1024
    """Bytes a receive reads at most in one ``recv``: a larger frame takes several, into a
    buffer of its own size that is given back once it is read."""
    _EARLY = 0.9
    """A kernel timeout is set to this share of the time left, so that calls made soon after
    with about the same time left need not set it again (a system call each); a wait it cuts
    short is resumed with the exact time left."""

    def __init__(self, sock: socket.socket, poll: BusyPoll | None = None, *,
                 naps: bool = True) -> None:
        """``naps``: whether a long wait may nap before it polls (``_poll``), on a socket that
        ``select`` can wait on."""
        sock.settimeout(None)  # blocking: the kernel's timeouts bound the waits
        self.sock = sock
        self._fd = sock.fileno()
        if poll is None:
            poll = BusyPoll(naps=naps and self._fd < _SELECTABLE)
        self.poll = poll
        self._buffer = bytearray(self.BUFFER)
        self._view = memoryview(self._buffer)
        self._start = self._end = 0  # the bytes received and not yet handed out
        self._out = bytearray()
        self._timeout: float | None = None  # the kernel timeout set on the socket

    def send(self, message: _Message, deadline: float | None = None) -> None:
        """Write one frame: its length and body encoded in place, sent in one system call."""
        data = self._out
        _encoder.encode_into(message, data, 4)
        data[:4] = (len(data) - 4).to_bytes(4, "big")
        while True:
            self._limit(deadline)
            try:
                sent = self.sock.send(data)
            except BlockingIOError:  # the kernel's timeout: early, or the deadline is past
                self._timeout = 0.0  # set it again, to the exact time left
                continue
            if sent == len(data):
                return
            data = data[sent:]  # only after a timeout cut a send short

    def receive(self, limit: int = MAX_FRAME, deadline: float | None = None) -> Message:
        """Read one frame. ``EOFError`` at a clean end; ``FrameError`` for anything malformed;
        ``TimeoutError`` past ``deadline``."""
        if self._start == self._end:
            self._start = self._end = 0
            if not self._wait_and_receive(deadline):
                raise EOFError("the peer closed the connection")
        while self._end - self._start < 4:
            self._more(deadline, "the frame's length is cut short")
        start = self._start
        size = int.from_bytes(self._buffer[start:start + 4], "big")
        if size > limit:
            raise FrameError(f"a frame of {size} bytes is over the limit of {limit}")
        total = 4 + size
        if start + total > len(self._buffer):
            self._make_room(total)
            start = 0
        while self._end - start < total:
            self._more(deadline, "the frame is cut short")
        self._start = start + total
        try:
            message: Message = _decoder.decode(self._view[start + 4:start + total])
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise FrameError(f"a malformed frame ({exc})") from None
        if self._start == self._end and len(self._buffer) > self.BUFFER:
            self._buffer = bytearray(self.BUFFER)  # a large frame's buffer goes back
            self._view = memoryview(self._buffer)
            self._start = self._end = 0
        return message

    def _wait_and_receive(self, deadline: float | None) -> int:
        """Wait for the next frame to begin, polling first if the policy says so; the bytes
        received (0 at the end of the stream). How long the wait took feeds the policy."""
        started = monotonic()
        self._limit(deadline)  # a deadline already past fails, with the frame there or not
        n = None
        budget = self.poll.budget(started)
        if budget and self.poll.claim():
            try:
                n = self._take()  # a frame already there is read at once: no poll
                if n is None:
                    polled_from = started
                    nap = self.poll.nap()
                    if nap:  # a long wait: sleep until shortly before its frame is due
                        n = self._nap(nap, deadline)
                        polled_from = monotonic()
                    if n is None:
                        n = self._poll(polled_from, budget, deadline)
            finally:
                self.poll.release()
        if n is None:  # not polling, or the poll gave up: a blocking recv, which returns at
            n = self._recv(deadline)  # once with a frame that is there
        self.poll.observe(monotonic() - started)
        return n

    def _nap(self, seconds: float, deadline: float | None) -> int | None:
        """Sleep ``seconds`` (never past ``deadline``), woken at once by a frame: what
        ``_take`` got then, None if the nap ran out (its lateness feeds the policy)."""
        if deadline is not None:
            seconds = min(seconds, deadline - monotonic())
            if seconds <= 0:
                return None
        precise_timers()
        start = monotonic()
        if _select((self._fd,), (), (), seconds)[0]:
            return self._take()
        self.poll.napped(monotonic() - start - seconds)
        return None

    def _take(self) -> int | None:
        """One ``recv`` that does not wait: the bytes received, 0 at the end of the stream, or
        None if nothing is there yet."""
        try:
            n = self.sock.recv_into(self._view[self._end:], 0, socket.MSG_DONTWAIT)
        except BlockingIOError:
            return None
        self._end += n
        return n

    def _poll(self, started: float, budget: float, deadline: float | None) -> int | None:
        """Try to receive until ``budget`` seconds after ``started`` (or ``deadline``) have
        passed; what ``_take`` got, None if the frame did not come."""
        clock, take = monotonic, self._take
        until = started + budget if deadline is None else min(started + budget, deadline)
        clocked = started + self.poll.UNCLOCKED
        timed_from = cpu = process = 0.0
        while (n := take()) is None:
            now = clock()
            if now >= until:
                break
            if not timed_from and now >= clocked:  # system calls, while nothing is there
                cpu, process, timed_from = thread_time(), process_time(), clock()
        now = clock()
        if not timed_from:  # most polls: over before the CPU's clocks were read at all
            self.poll.polled(0.0, 0.0, now, n is not None)
            return n
        timed = now - timed_from
        # A short poll says nothing of the machine: no second call on the frame's path, and a
        # third only for a poll that was kept waiting (whose frame came long ago).
        used = thread_time() - cpu if timed >= self.poll.JUDGED else timed
        others = 0.0
        if used < self.poll.CROWDED * timed:
            others = process_time() - process - used
        self.poll.polled(timed, used, now, n is not None, others)
        return n

    def _more(self, deadline: float | None, cut_short: str) -> None:
        if not self._recv(deadline):
            raise FrameError(cut_short)

    def _recv(self, deadline: float | None) -> int:
        """One ``recv`` into the buffer's free end, under ``deadline``."""
        while True:
            self._limit(deadline)
            try:
                n = self.sock.recv_into(self._view[self._end:])
            except BlockingIOError:  # the kernel's timeout: early, or the deadline is past
                self._timeout = 0.0  # set it again, to the exact time left
                continue
            self._end += n
            return n

    def _make_room(self, total: int) -> None:
        """Move the unread bytes to the front of a buffer that holds ``total`` bytes."""
        unread = bytes(self._view[self._start:self._end])
        if total > len(self._buffer):
            self._buffer = bytearray(total)
            self._view = memoryview(self._buffer)
        self._buffer[:len(unread)] = unread  # same length: the buffer keeps its size
        self._start, self._end = 0, len(unread)

    def _limit(self, deadline: float | None) -> None:
        """Set the socket's kernel timeouts so that no wait outlasts ``deadline``."""
        if deadline is None:
            if self._timeout is not None:
                self._set_timeout(None)
            return
        left = deadline - monotonic()
        if left <= 0:
            raise TimeoutError("the deadline has passed")
        if self._timeout is None or self._timeout > left:
            self._set_timeout(left * self._EARLY)
        elif self._timeout == 0.0:
            self._set_timeout(left)

    def _set_timeout(self, seconds: float | None) -> None:
        if seconds is None:
            value = _TIMEVAL.pack(0, 0)  # zero: no timeout
        else:
            micros = max(1, int(seconds * 1e6))  # never zero, which would mean no timeout
            value = _TIMEVAL.pack(micros // 1_000_000, micros % 1_000_000)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, value)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, value)
        self._timeout = seconds

    def close(self) -> None:
        self.sock.close()


_TIMEVAL = struct.Struct("@ll")
"""``struct timeval`` (seconds, microseconds) as ``setsockopt`` takes it."""


def parse_address(address: str) -> tuple[int, str | tuple[str, int]]:
    """``unix:/path`` or ``tcp:host:port`` as (socket family, sockaddr)."""
    kind, _, rest = address.partition(":")
    if kind == "unix":
        return socket.AF_UNIX, rest
    if kind == "tcp":
        host, _, port = rest.rpartition(":")
        return socket.AF_INET, (host, int(port))
    raise ValueError(f"unknown address {address!r}: use unix:/path or tcp:host:port")
