"""The wire layer: DAP's ``Content-Length`` framing over byte streams.

A ``Channel`` owns one stream pair. It reads whole messages (JSON objects) on a thread of its
own and hands each to a callback; writes are serialized by a lock so that two threads never
interleave a header and a body. Nothing here knows what a message means.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import IO, Any

__all__ = ["Channel", "WireError", "read_message", "encode_message"]

Json = dict[str, Any]


class WireError(Exception):
    """The peer sent something that is not a DAP frame."""


def encode_message(message: Json) -> bytes:
    body = json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def read_message(stream: IO[bytes]) -> Json | None:
    """One message from ``stream``, or None at a clean end of stream."""
    length: int | None = None
    while True:
        line = stream.readline()
        if not line:
            if length is None:
                return None
            raise WireError("the stream ended inside a message header")
        line = line.rstrip(b"\r\n")
        if not line:
            if length is None:
                continue  # tolerate stray blank lines between frames
            break
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            try:
                length = int(value.strip())
            except ValueError:
                raise WireError(f"bad Content-Length header: {line!r}") from None
    body = stream.read(length)
    if len(body) < length:
        raise WireError(f"the stream ended {length - len(body)} bytes into a message body")
    try:
        message = json.loads(body)
    except ValueError as exc:
        raise WireError(f"a message body is not JSON: {exc}") from None
    if not isinstance(message, dict):
        raise WireError("a message body is not a JSON object")
    return message


class Channel:
    """One peer: reads messages on a thread, writes them under a lock."""

    def __init__(self, name: str, reader: IO[bytes], writer: IO[bytes]) -> None:
        self.name = name
        self._reader = reader
        self._writer = writer
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.closed = False

    def start(self, on_message: Callable[[Json], None], on_close: Callable[[str], None]) -> None:
        """Start reading; ``on_close`` gets a reason when the stream ends or breaks."""

        def run() -> None:
            reason = "end of stream"
            try:
                while True:
                    message = read_message(self._reader)
                    if message is None:
                        break
                    on_message(message)
            except (WireError, OSError, ValueError) as exc:
                reason = str(exc)
            self.closed = True
            on_close(reason)

        self._thread = threading.Thread(target=run, name=f"dap-{self.name}", daemon=True)
        self._thread.start()

    def send(self, message: Json) -> None:
        data = encode_message(message)
        with self._lock:
            if self.closed and self.name != "client":
                return
            try:
                self._writer.write(data)
                self._writer.flush()
            except (OSError, ValueError):
                self.closed = True

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)
