"""The local engine's wire: length-prefixed msgspec frames and the handshake.

A frame is a 4-byte big-endian length and that many bytes of MessagePack: one tagged, array-like
msgspec Struct. Values that cross (arguments, results, errors) ride inside as the CBOR of their
wire form (``_marshal``), the same bytes a journal stores.

A connection starts with a challenge: the server sends a random nonce and the client answers
HMAC-SHA256(key, nonce + caller id), where the key is the one of that caller's calls to that
service (``_keys``). No key crosses. Until that answer checks out, the server reads at most one
small frame, with a deadline, and runs no service code.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import socket

import msgspec

MAX_FRAME = int(os.environ.get("DISTDEV_MAX_FRAME", 16 * 1024 * 1024))
"""Frames larger than this are refused (the connection is closed); a caller refuses to send
one (``FrameTooLarge``). Every process of a deployment inherits the same setting."""
FRAME_OVERHEAD = 64 * 1024
"""Room left in a frame for a call's ids and names beside its arguments."""
HANDSHAKE_FRAME = 4096
HANDSHAKE_SECONDS = 10.0


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


def parse_address(address: str) -> tuple[int, str | tuple[str, int]]:
    """``unix:/path`` or ``tcp:host:port`` as (socket family, sockaddr)."""
    kind, _, rest = address.partition(":")
    if kind == "unix":
        return socket.AF_UNIX, rest
    if kind == "tcp":
        host, _, port = rest.rpartition(":")
        return socket.AF_INET, (host, int(port))
    raise ValueError(f"unknown address {address!r}: use unix:/path or tcp:host:port")
