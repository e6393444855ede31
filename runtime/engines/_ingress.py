"""The root's HTTP ingress: each export served as ``POST /<export>``.

The body is a JSON object of arguments, validated against the export's annotations before the
call (a 400 names what is wrong); the answer is the result as JSON. A service error is a 500 with
its type and message; an unknown export a 404 that lists the exports. ``GET /`` lists them too.
"""

from __future__ import annotations

import inspect
import json
import threading
import typing
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import msgspec

from ..errors import DistdevError, ServiceError
from ..membrane import ServiceProxy, target_of

__all__ = ["Ingress", "ExportSchema"]

_MAX_BODY = 16 * 1024 * 1024


class ExportSchema:
    """How to validate one export's JSON arguments."""

    def __init__(self, name: str, function: Callable[..., Any]) -> None:
        self.name = name
        signature = inspect.signature(function)
        try:
            hints = typing.get_type_hints(function)
        except Exception:
            hints = {}
        fields: list[Any] = []
        for p in signature.parameters.values():
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            kind = hints.get(p.name, Any)
            fields.append((p.name, kind) if p.default is p.empty else (p.name, kind, p.default))
        self.args_type = msgspec.defstruct(
            f"{name}_args", fields, kw_only=True, forbid_unknown_fields=True
        )
        self.params = [f[0] for f in fields]

    def decode(self, body: bytes) -> dict[str, Any]:
        """Validated keyword arguments, or ``msgspec.DecodeError``/``ValidationError``."""
        value = msgspec.json.decode(body or b"{}", type=self.args_type)
        return {name: getattr(value, name) for name in self.params}


def _encode_hook(value: Any) -> Any:
    if type(value) is ServiceProxy:
        return {"$service": target_of(value)}
    if isinstance(value, (set, frozenset)):
        return list(value)
    raise NotImplementedError(f"cannot encode {type(value).__name__} as JSON")


_encoder = msgspec.json.Encoder(enc_hook=_encode_hook)


class Ingress:
    """Serves a service's exports over HTTP on loopback (or ``host``)."""

    def __init__(
        self,
        proxy: ServiceProxy,
        exports: dict[str, Callable[..., Any]],
        port: int,
        host: str = "127.0.0.1",
    ) -> None:
        self.proxy = proxy
        self.schemas = {name: ExportSchema(name, fn) for name, fn in exports.items()}
        ingress = self

        class Handler(_Handler):
            owner = ingress

        try:
            self.server = ThreadingHTTPServer((host, port), Handler)
        except OSError as exc:
            raise DistdevError(
                f"cannot serve the ingress on {host}:{port} ({exc.strerror or exc}); stop what "
                "listens there, or choose another port (--port N, 0: any free port)"
            ) from None
        self.server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.server.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://{host}:{port}"

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self.server.serve_forever, name="distdev-ingress", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def handle(self, export: str, body: bytes) -> tuple[int, Any]:
        """Answer one request: (status, JSON-ready body)."""
        schema = self.schemas.get(export)
        if schema is None:
            return 404, {
                "error": "NotFound",
                "message": f"no export {export!r}; POST to one of: "
                + ", ".join(f"/{n}" for n in self.schemas),
            }
        try:
            kwargs = schema.decode(body)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            return 400, {"error": "BadRequest", "message": f"{export}: {exc}"}
        try:
            result = getattr(self.proxy, export)(**kwargs)
        except ServiceError as exc:
            return 500, {"error": exc.type_name, "message": exc.message, "service": exc.service}
        except Exception as exc:
            return 500, {"error": type(exc).__name__, "message": _message(exc)}
        return 200, result


def _message(exc: BaseException) -> str:
    # str(KeyError("x")) is "'x'": a KeyError's message is its argument.
    if isinstance(exc, KeyError) and len(exc.args) == 1:
        return str(exc.args[0])
    return str(exc)


class _Handler(BaseHTTPRequestHandler):
    owner: Ingress
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > _MAX_BODY:
            self._send(413, {"error": "TooLarge", "message": f"bodies are limited to {_MAX_BODY}"})
            return
        body = self.rfile.read(length)
        status, payload = self.owner.handle(self.path.strip("/"), body)
        self._send(status, payload)

    def do_GET(self) -> None:
        if self.path.strip("/"):
            self._send(405, {"error": "MethodNotAllowed", "message": "call exports with POST"})
            return
        listing = {n: s.params for n, s in self.owner.schemas.items()}
        self._send(200, {"exports": listing})

    def _send(self, status: int, payload: Any) -> None:
        try:
            body = _encoder.encode(payload)
        except (TypeError, NotImplementedError) as exc:
            status, body = 500, json.dumps({"error": "TypeError", "message": str(exc)}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass
