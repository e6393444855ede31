"""What answers at a service's address while its process is down: its supervisor.

Without it a caller of a service that is restarting, or cannot start, could only retry a
refused connection until its call timed out. The stand-in completes the service's own
handshake (a caller proves itself exactly as it would to the service: nobody learns anything
of a service without a key to it), then refuses every call with why the service is not
serving. The reason says whether that will last (crash-looping, stopped): a caller then fails
at once with it, instead of waiting out its timeout. For a root with an HTTP ingress it also
answers on the ingress port: 503, with the reason and a ``Retry-After``. The stand-in never runs
a call.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .. import _wire as wire
from .._client import LASTING_PREFIX, NOT_READY_PREFIX
from .._keys import ServiceKeys
from .._server import Gatekeeper, listen
from .._wire import Call, Refused

__all__ = ["StandIn"]


class StandIn:
    """Answers for ``service_id`` on ``address`` until ``close``; ``reason()`` is read for
    each call, so it follows the supervisor's view as it changes."""

    def __init__(self, service_id: str, address: str, keys: ServiceKeys,
                 reason: Callable[[], tuple[str, bool]], log: Callable[[str], None],
                 http_port: int | None = None) -> None:
        self.gatekeeper = Gatekeeper(service_id, keys, log)
        self.reason = reason
        self.servers: list[Any] = [listen(address, self._serve)]
        if http_port is not None:
            try:
                self.servers.append(_http_stand_in(http_port, reason))
            except OSError as exc:  # taken (perhaps why the root cannot start): no answer there
                log(f"cannot answer on the ingress port {http_port} meanwhile ({exc})")
        for server in self.servers:
            threading.Thread(target=server.serve_forever, args=(0.1,),
                             name=f"distdev-standin-{service_id}", daemon=True).start()

    def _serve(self, sock: socket.socket) -> None:
        try:
            if self.gatekeeper.admit(sock) is None:
                return
            while isinstance(wire.receive(sock), Call):
                why, lasting = self.reason()
                wire.send(sock, Refused((LASTING_PREFIX if lasting else NOT_READY_PREFIX) + why))
        except (OSError, EOFError, wire.FrameError):
            pass

    def close(self) -> None:
        """Stop answering and free the address (the service's own process binds it next)."""
        for server in self.servers:
            server.shutdown()
            server.server_close()


def _http_stand_in(port: int, reason: Callable[[], tuple[str, bool]]) -> ThreadingHTTPServer:
    """Every request to the ingress answered 503 with why the root is not serving."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _unavailable(self) -> None:
            why, lasting = reason()
            body = json.dumps({"error": "ServiceUnavailableError", "message": why},
                              ensure_ascii=False).encode()
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            self.send_response(503)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Retry-After", "10" if lasting else "1")
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            self._unavailable()

        def do_POST(self) -> None:
            self._unavailable()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    return server
