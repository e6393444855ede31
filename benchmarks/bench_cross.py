"""The floors a cross-process call is measured against: a raw Python socket echo and a bare
fdatasync, each in the same run as the engine's figures (``bench_engine``).

* **Raw echo**: ``python bench_cross.py echo UNIX_PATH`` serves, in its own process, the
  smallest honest request/response over a Unix socket: a 4-byte big-endian length and that many
  bytes, answered with the same frame. Nothing is decoded, checked or journaled. Two clients:

  - ``polled``: client and server both poll the socket without blocking (``MSG_DONTWAIT`` in a
    loop) until the frame arrives, so neither pays a wake-up: the floor of a Python round trip
    between two processes on two vCPUs. The server polls only while its client polls (the first
    byte of each frame says which).
  - ``blocking``: both sides block in ``recv``: each answer wakes a sleeping process.
  - ``durable``: polled, and before answering the server overwrites the frame's payload (as
    many bytes as a durable call's records) at the next offset of a file allocated ahead, as
    the bare fdatasync below does, and ``fdatasync``s it: the floor of a durable round trip in
    Python, one sync and nothing else, with both ends polling (the client through the sync).

* **Bare fdatasync**: write a call's records (as many bytes as one call adds to the durable
  deployment's journal: its call-in and return records) to a file beside the deployments' state
  folders and ``fdatasync`` it, one at a time. The write overwrites a region allocated in advance
  (``posix_fallocate``), at the next offset each time, as the journal's file does
  (``journal/_file.py``): the file's size does not change, so the sync writes no metadata. This
  is the floor a durable call is set against. The same write appended to a growing file (each
  sync then also writes the file's new size) is measured beside it, for reference: it is what a
  journal without preallocation would pay, and about 1.5x slower, so setting the durable round
  trip against it would flatter it.

Nothing here is asserted.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

POLLED, BLOCKING, DURABLE = b"p", b"b", b"d"
"""The first byte of a raw echo's request: whether the server polls for the next one, and
whether it syncs the payload to disk before answering (``DURABLE`` polls too)."""
RECORD = b"r" * 64
SYNC_FILE_SIZE = 1 << 20


def _receive_frame(sock: socket.socket, buf: bytearray, poll: bool) -> int:
    """Read one length-prefixed frame into ``buf``; its total size (0 at the end)."""
    view = memoryview(buf)
    got = 0
    need = 4
    while got < need:
        if poll:
            try:
                n = sock.recv_into(view[got:], 0, socket.MSG_DONTWAIT)
            except BlockingIOError:
                continue
        else:
            n = sock.recv_into(view[got:])
        if not n:
            return 0
        got += n
        if need == 4 and got >= 4:
            need = 4 + int.from_bytes(buf[:4], "big")
    return got


def serve_echo(path: str) -> None:
    """Answer every frame on one connection with itself, polling or blocking as asked, and
    syncing its payload to a file beside the socket first where asked."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)
    fd = os.open(path + ".journal", os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    os.posix_fallocate(fd, 0, SYNC_FILE_SIZE)
    os.fsync(fd)
    print("ready", flush=True)
    sock, _ = listener.accept()
    buf = bytearray(1 << 16)
    view = memoryview(buf)
    poll = False
    offset = 0
    while True:
        n = _receive_frame(sock, buf, poll)
        if not n:
            return
        kind = buf[4:5]
        poll = kind != BLOCKING
        if kind == DURABLE:
            size = n - 5
            if offset + size > SYNC_FILE_SIZE:
                offset = 0
            os.pwrite(fd, view[5:n], offset)
            os.fdatasync(fd)
            offset += size
        sock.sendall(view[:n])


class RawEcho:
    """The raw echo server in its own process, and one connection to it."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        path = str(folder / "echo.sock")
        self.process = subprocess.Popen([sys.executable, __file__, "echo", path],
                                        stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        if self.process.stdout.readline().strip() != "ready":
            self.close()
            raise RuntimeError("the raw echo server did not start")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.buf = bytearray(1 << 16)

    def caller(self, poll: bool, payload: bytes, *, durable: bool = False
               ) -> Callable[[], int]:
        """A no-argument round trip of ``payload`` (polled or blocking on both sides; polled
        and synced to disk by the server before it answers, if ``durable``)."""
        kind = DURABLE if durable else POLLED if poll else BLOCKING
        frame = (1 + len(payload)).to_bytes(4, "big") + kind + payload
        poll = poll or durable
        sock, buf = self.sock, self.buf

        def call() -> int:
            sock.sendall(frame)
            return _receive_frame(sock, buf, poll)

        return call

    def close(self) -> None:
        if getattr(self, "sock", None) is not None:
            self.sock.close()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def fdatasync_seconds(folder: Path, n: int, *, preallocated: bool, size: int = len(RECORD)
                      ) -> float:
    """Median seconds of one ``size``-byte write and its fdatasync, over ``n`` in a row:
    overwriting a region allocated (and made durable) in advance at the next offset each time,
    or appended to a growing file."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / ("sync-preallocated.bin" if preallocated else "sync-append.bin")
    record = (RECORD * (size // len(RECORD) + 1))[:size]
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        if preallocated:
            os.posix_fallocate(fd, 0, SYNC_FILE_SIZE)
            os.fsync(fd)
        times = []
        clock = time.perf_counter
        for i in range(n):
            t = clock()
            if preallocated:
                os.pwrite(fd, record, (i * size) % (SYNC_FILE_SIZE - size))
            else:
                os.write(fd, record)
            os.fdatasync(fd)
            times.append(clock() - t)
        return statistics.median(times)
    finally:
        os.close(fd)
        path.unlink()


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "echo":
        serve_echo(sys.argv[2])
    else:
        sys.exit("usage: bench_cross.py echo UNIX_PATH")
