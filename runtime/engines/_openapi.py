"""The ingress described as OpenAPI 3.1 (``GET /openapi.json``), from the exports' annotations.

Each export is ``POST /<export>`` with a JSON object of its arguments as the request body and its
result as the response; the schemas are JSON Schema (2020-12, which OpenAPI 3.1 uses) made by
``msgspec.json.schema_components``, the library whose JSON rules the ingress follows
(``membrane._json``), so a generated client sends what the ingress decodes. An annotation that
has no JSON Schema (a class that cannot cross a membrane, a name that does not resolve) is
described as any value rather than failing the whole document.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

import msgspec

from .._version import VERSION
from ..membrane import ServiceProxy, value_to_json
from ..membrane._json import UNPROCESSABLE, annotations_of, value_base

__all__ = ["openapi"]

_REF = "#/components/schemas/{name}"
_ERROR_NAME = "distdev.Error"  # namespaced: an application's own class may be named Error
_ERROR = {"$ref": _REF.format(name=_ERROR_NAME)}
_ERROR_SCHEMA = {
    "type": "object",
    "description": "An error answer: `error` names its kind (the HTTP reason, or the type of "
                   "the exception a service raised), `message` says what happened; `detail` is "
                   "what an HTTPError carried (for a 422: the `field` that is wrong and the "
                   "`problem`); `service` is the service an unexpected exception came from.",
    "properties": {"error": {"type": "string"}, "message": {"type": "string"}, "detail": {},
                   "service": {"type": "string"}},
    "required": ["error", "message"],
}
_PROXY_SCHEMA = {"type": "object", "description": "a service proxy",
                 "properties": {"$service": {"type": "string"}}, "required": ["$service"]}


def _schema_hook(kind: type) -> dict[str, Any]:
    if kind is ServiceProxy:
        return _PROXY_SCHEMA
    base = value_base(kind)  # a service's own datetime: described as datetime
    if base is not None:
        return msgspec.json.schema(base)
    raise NotImplementedError


def openapi(title: str, exports: dict[str, Callable[..., Any]]) -> dict[str, Any]:
    """The OpenAPI document of an ingress that serves ``exports`` for service ``title``."""
    shapes = {name: _Export(name, fn) for name, fn in exports.items()}
    kinds = list({id(k): k for s in shapes.values() for k in s.kinds()}.values())
    schemas, components = _schemas(kinds)
    by_kind = {id(k): s for k, s in zip(kinds, schemas)}
    paths = {f"/{name}": {"post": shape.operation(by_kind)} for name, shape in shapes.items()}
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": VERSION,
                 "description": f"The exports of service {title}, each as POST /<export>."},
        "paths": paths,
        "components": {"schemas": {**components, _ERROR_NAME: _ERROR_SCHEMA}},
    }


def _schemas(kinds: list[Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Each kind's schema (any value, ``{}``, for one with none) and the shared components."""
    described = []
    for kind in kinds:
        try:
            msgspec.json.schema(kind, schema_hook=_schema_hook)
            described.append(kind)
        except (TypeError, ValueError, NotImplementedError):
            pass
    found, components = msgspec.json.schema_components(described, schema_hook=_schema_hook,
                                                       ref_template=_REF)
    by_id = {id(k): s for k, s in zip(described, found)}
    return [by_id.get(id(k), {}) for k in kinds], components


class _Export:
    def __init__(self, name: str, function: Callable[..., Any]) -> None:
        self.name = name
        self.doc = inspect.getdoc(function)
        hints = annotations_of(function)
        self.returns = hints.get("return", Any)
        self.params: list[tuple[inspect.Parameter, Any]] = []
        self.rest: Any = None  # **kwargs' annotation: the body's other names
        for p in inspect.signature(function).parameters.values():
            if p.kind is p.VAR_KEYWORD:
                self.rest = hints.get(p.name, Any)
            elif p.kind is not p.VAR_POSITIONAL:  # *args cannot be named in a JSON object
                self.params.append((p, hints.get(p.name, Any)))

    def kinds(self) -> list[Any]:
        listed = [kind for _, kind in self.params] + [self.returns]
        return listed + ([self.rest] if self.rest is not None else [])

    def operation(self, by_kind: dict[int, dict[str, Any]]) -> dict[str, Any]:
        properties: dict[str, Any] = {}
        for p, kind in self.params:
            schema = dict(by_kind[id(kind)])
            if p.default is not p.empty:
                default = _json_default(p.default)
                if default is not _NONE:
                    schema["default"] = default
            properties[p.name] = schema
        body: dict[str, Any] = {
            "type": "object", "properties": properties,
            "required": [p.name for p, _ in self.params if p.default is p.empty],
            "additionalProperties": by_kind[id(self.rest)] if self.rest is not None else False,
        }
        operation: dict[str, Any] = {
            "operationId": self.name,
            "requestBody": {"required": False,
                            "content": {"application/json": {"schema": body}}},
            "responses": {
                "200": {"description": f"what {self.name} returned",
                        "content": {"application/json": {"schema": by_kind[id(self.returns)]}}},
                **{str(status): _error_response(text) for status, text in _ERRORS},
            },
        }
        if self.doc:
            operation["summary"], _, rest = self.doc.partition("\n")
            if rest.strip():
                operation["description"] = rest.strip()
        return operation


_ERRORS = [
    (HTTPStatus.BAD_REQUEST.value, "the body is not JSON"),
    (UNPROCESSABLE, "an argument is missing, unexpected or of the wrong type: `detail.field` "
                    "names it"),
    ("4XX", "an HTTPError the service raised, with its status"),
    (HTTPStatus.INTERNAL_SERVER_ERROR.value, "the service raised an unexpected exception"),
    (HTTPStatus.SERVICE_UNAVAILABLE.value, "a service the call needed is not serving (restarting, "
                                           "in a crash loop): the message says why"),
    (HTTPStatus.GATEWAY_TIMEOUT.value, "a service the call needed did not answer within the "
                                       "call timeout"),
]


def _error_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ERROR}}}


_NONE = object()


def _json_default(value: Any) -> Any:
    """A parameter's default as JSON, or ``_NONE`` if it cannot cross a membrane."""
    try:
        return msgspec.json.decode(value_to_json(value, "a default"))
    except Exception:
        return _NONE
