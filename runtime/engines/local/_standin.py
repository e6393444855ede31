"""What answers at a service's address while its process is down: its supervisor.

Without it a caller of a service that is restarting, or cannot start, could only retry a
refused connection until its call timed out. The stand-in completes the service's own
handshake (a caller proves itself exactly as it would to the service: nobody learns anything
of a service without a key to it), then refuses every call with why the service is not
serving. The reason says whether that will last (crash-looping, stopped): a caller then fails
at once with it, instead of waiting out its timeout. The stand-in never runs a call.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable

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
                 reason: Callable[[], tuple[str, bool]], log: Callable[[str], None]) -> None:
        self.gatekeeper = Gatekeeper(service_id, keys, log)
        self.reason = reason
        self.server = listen(address, self._serve)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.1,),
                                       name=f"distdev-standin-{service_id}", daemon=True)
        self.thread.start()

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
        self.server.shutdown()
        self.server.server_close()
