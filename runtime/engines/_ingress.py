"""The root's HTTP ingress: each export served as ``POST /<export>``.

The body is a JSON object of arguments, converted to the export's annotated types before the
call (``membrane._json``: the rule ``distdev call`` follows too); the answer is the result as
JSON. Statuses:

- 200 with the result;
- 400 when the body is not JSON, 422 when an argument is missing, unexpected or does not fit
  its annotation (the body's ``detail.field`` names it: ``money.currency``);
- the status of an ``HTTPError`` the service raised (or let through from a service it called);
- 404 for a path that is no export, listing the exports; 405 for a GET of an export;
- 503 when a service the call needed is not serving (a ``ServiceUnavailableError``: restarting,
  in a crash loop), 504 when one did not answer within the call timeout (``CallTimeoutError``);
- 500 for any other exception, with its type and message.

Every error body is ``{"error", "message"[, "detail"][, "service"]}``. ``GET /openapi.json``
describes it all (``_openapi``); ``GET /`` lists the exports and their parameters. JSON is UTF-8 as it is.
"""

from __future__ import annotations

import inspect
import socket
import threading
import urllib.parse
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import msgspec

from ..compartment import state
from ..errors import (
    CallTimeoutError,
    DistdevError,
    HTTPError,
    MembraneError,
    ServiceError,
    ServiceUnavailableError,
)
from ..membrane import ServiceProxy, decode_arguments, make_proxy, target_of, value_to_json
from ..rules import MEMBRANE_TYPES
from ._openapi import openapi

__all__ = ["Ingress"]

_MAX_BODY = 16 * 1024 * 1024
_JSON = "application/json; charset=utf-8"

Answer = tuple[int, bytes]
"""A status and its UTF-8 JSON body."""


class Ingress:
    """Serves a service's exports over HTTP on loopback (or ``host``)."""

    def __init__(
        self,
        proxy: ServiceProxy,
        exports: dict[str, Callable[..., Any]],
        port: int,
        host: str = "127.0.0.1",
        *,
        after_reply: Callable[[], object] | None = None,
    ) -> None:
        """``after_reply``: run on a request's thread once its response has left (the
        checkpoint the call found due, ``LiveService.after_reply``)."""
        self.proxy = proxy
        self.after_reply = after_reply
        self.exports = exports
        self._openapi: bytes | None = None
        ingress = self

        class Handler(_Handler):
            owner = ingress

        try:
            self.server = _Server((host, port), Handler)
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

    def serve_exports(self, exports: dict[str, Callable[..., Any]]) -> None:
        """Serve these exports from now on (the service was reloaded with new code): their
        signatures are what requests are converted by, and what the OpenAPI document says."""
        self.exports = exports
        self._openapi = None

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self.server.serve_forever, name="distdev-ingress", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- answers ---------------------------------------------------------------------------

    def post(self, export: str, body: bytes) -> Answer:
        """Answer ``POST /<export>``."""
        function = self.exports.get(export)
        if function is None:
            return self.not_found(f"/{export}")
        try:
            arguments = msgspec.json.decode(body) if body.strip() else {}
        except msgspec.DecodeError as exc:
            return _error(HTTPStatus.BAD_REQUEST, f"the body of POST /{export} is not JSON "
                          f"({exc}); send a JSON object of its arguments")
        if not isinstance(arguments, dict):
            return _error(HTTPStatus.UNPROCESSABLE_ENTITY, f"the body of POST /{export} is a "
                          f"JSON {type(arguments).__name__}; send an object of its arguments, "
                          "by name")
        try:
            args, kwargs = decode_arguments(function, [], arguments, _outside_proxy)
            result = getattr(self.proxy, export)(*args, **kwargs)
        except HTTPError as exc:
            return _http_error(exc)
        except ServiceError as exc:
            return _error(HTTPStatus.INTERNAL_SERVER_ERROR, exc.message, error=exc.type_name,
                          service=exc.service)
        except CallTimeoutError as exc:
            return _error(HTTPStatus.GATEWAY_TIMEOUT, str(exc), error="CallTimeoutError")
        except ServiceUnavailableError as exc:
            return _error(HTTPStatus.SERVICE_UNAVAILABLE, str(exc),
                          error=type(exc).__name__)
        except Exception as exc:
            return _error(HTTPStatus.INTERNAL_SERVER_ERROR, _message(exc),
                          error=type(exc).__name__)
        try:
            return HTTPStatus.OK, value_to_json(result, f"the value {export} returned")
        except MembraneError as exc:
            return _error(HTTPStatus.INTERNAL_SERVER_ERROR, str(exc), error="MembraneError")

    def get(self, path: str) -> Answer:
        """Answer ``GET``: the OpenAPI document, the list of exports, or why not."""
        if path == "/openapi.json":
            if self._openapi is None:
                document = openapi(target_of(self.proxy), self.exports)
                self._openapi = msgspec.json.encode(document)
            return HTTPStatus.OK, self._openapi
        if path == "/":
            listing = {name: [p.name for p in inspect.signature(fn).parameters.values()]
                       for name, fn in self.exports.items()}
            return HTTPStatus.OK, msgspec.json.encode(
                {"exports": listing, "openapi": "/openapi.json"})
        if path.lstrip("/") in self.exports:
            return _error(HTTPStatus.METHOD_NOT_ALLOWED, f"call {path} with POST and a JSON "
                          "object of its arguments")
        return self.not_found(path)

    def not_found(self, path: str) -> Answer:
        names = list(self.exports)
        listed = ", ".join(f"/{n}" for n in names) or "none (the service exports nothing)"
        return _error(HTTPStatus.NOT_FOUND, f"{path} is no export of "
                      f"{target_of(self.proxy)}; POST to one of: {listed}",
                      detail={"exports": names})


def _outside_proxy(service_id: str) -> ServiceProxy:
    """A proxy named in a request (``{"$service": id}``): the ingress only passes it on, and
    the callee rebuilds its own from the id."""
    return make_proxy(service_id, _NoRouter())


class _NoRouter:
    def call(self, holder: Any, target: str, export: str, args: tuple[Any, ...],
             kwargs: dict[str, Any]) -> Any:
        raise DistdevError(f"a proxy to {target} from an HTTP request can only be passed on")

    def exports(self, target: str) -> None:
        return None


def _http_error(exc: HTTPError) -> Answer:
    status = getattr(exc, "status", HTTPStatus.INTERNAL_SERVER_ERROR)
    message = getattr(exc, "message", str(exc))
    if not hasattr(exc, "detail"):  # rebuilt without it: it could not cross a membrane
        return _error(HTTPStatus.INTERNAL_SERVER_ERROR, f"HTTPError({status}, {message!r}) "
                      "was raised with a detail that cannot cross a membrane, so it was lost "
                      f"on the way; give it {MEMBRANE_TYPES}", error="MembraneError")
    return _error(status, message, detail=exc.detail)


def _error(status: int, message: str, *, error: str | None = None, detail: Any = None,
           service: str | None = None) -> Answer:
    body: dict[str, Any] = {"error": error or _reason(status), "message": message}
    if detail is not None:
        body["detail"] = detail
    if service is not None:
        body["service"] = service
    return status, value_to_json(body, "the error's detail")


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _message(exc: BaseException) -> str:
    # str(KeyError("x")) is "'x'": a KeyError's message is its argument.
    if isinstance(exc, KeyError) and len(exc.args) == 1:
        return str(exc.args[0])
    return str(exc)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = socket.SOMAXCONN  # the default 5 resets a burst of clients' connects


class _Handler(BaseHTTPRequestHandler):
    owner: Ingress
    protocol_version = "HTTP/1.1"
    # Headers and body are two writes: with Nagle's algorithm, a keep-alive client's delayed
    # ACK held every answer back by 40 ms.
    disable_nagle_algorithm = True

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > _MAX_BODY:
            self._send(*_error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                               f"bodies are limited to {_MAX_BODY} bytes"))
            self.close_connection = True  # the body was not read
            return
        body = self.rfile.read(length)
        after_reply = self.owner.after_reply
        state.answers_after = after_reply is not None  # what the call finds due waits for this
        self._send(*self.owner.post(self._path().strip("/"), body))
        if after_reply is not None:
            after_reply()

    def do_GET(self) -> None:
        self._send(*self.owner.get(self._path()))

    def _path(self) -> str:
        return urllib.parse.unquote(urllib.parse.urlsplit(self.path).path) or "/"

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", _JSON)
        self.send_header("Content-Length", str(len(body)))
        if status == HTTPStatus.METHOD_NOT_ALLOWED:
            self.send_header("Allow", "POST")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass
