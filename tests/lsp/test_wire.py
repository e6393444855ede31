"""Malformed JSON-RPC on the wire, sent by a raw stdio client (pytest-lsp's client refuses to
serialize malformed params): each gets an error response or is dropped, and the server lives."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).resolve().parent / "fixtures"
pytestmark = pytest.mark.asyncio(loop_scope="session")


class RawClient:
    """Content-Length framing over a subprocess's stdio, nothing else."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    def send_bytes(self, body: bytes) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)

    def send(self, message: dict[str, Any]) -> None:
        self.send_bytes(json.dumps({"jsonrpc": "2.0", **message}).encode())

    async def receive(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        length = 0
        while True:
            line = await self.process.stdout.readline()
            if not line:
                raise EOFError("the server closed its output")
            if line in (b"\r\n", b"\n"):
                break
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        return json.loads(await self.process.stdout.readexactly(length))  # type: ignore[no-any-return]

    async def response(self, msg_id: int) -> dict[str, Any]:
        while True:
            message = await asyncio.wait_for(self.receive(), 20)
            if message.get("id") == msg_id and "method" not in message:
                return message


async def test_wire_malformed_messages_get_errors_and_server_lives() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "distdev.lsp", stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    client = RawClient(process)
    try:
        root = (FIXTURES / "tricky").as_uri()
        client.send({"id": 1, "method": "initialize",
                     "params": {"processId": None, "rootUri": root, "capabilities": {}}})
        assert "capabilities" in (await client.response(1))["result"]
        client.send({"method": "initialized", "params": {}})
        bad_requests = [
            (2, "textDocument/definition", {"bogus": 1}),
            (3, "textDocument/hover", {"textDocument": {"uri": 5}, "position": "here"}),
            (4, "distdev/serviceGraph", {"uri": 42}),
            (5, "distdev/noSuchRequest", {}),
            (6, "textDocument/rename", {"textDocument": {"uri": root + "/app.py"},
                                        "position": {"line": 0, "character": 0}}),
        ]
        for msg_id, method, params in bad_requests:
            client.send({"id": msg_id, "method": method, "params": params})
        client.send_bytes(b"{this is not json")
        client.send({"method": "textDocument/didChange", "params": {"textDocument": {"uri": 1}}})
        client.send({"method": "textDocument/didOpen", "params": {"textDocument": None}})
        for msg_id, method, _ in bad_requests:
            assert "error" in await client.response(msg_id), method
        client.send({"id": 7, "method": "distdev/serviceGraph", "params": {}})
        graph = (await client.response(7))["result"]
        assert [r["id"] for r in graph["roots"]] == ["app"]
        client.send({"id": 8, "method": "shutdown"})
        await client.response(8)
        client.send({"method": "exit"})
        assert await asyncio.wait_for(process.wait(), 20) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
