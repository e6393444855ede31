"""The functions service code calls: ``import_service``, ``host``, ``effect``, ``phase``,
``patched``."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, overload

from ..compartment import current_service, state
from ..errors import PhaseError, ServiceLoadError
from ..membrane import ServiceProxy, can_cross
from ..rules import app_module_name
from ._service import Service

F = TypeVar("F", bound=Callable[..., Any])


def _calling_service(what: str) -> Service:
    service = current_service()
    if not isinstance(service, Service):
        raise PhaseError(
            f"{what} was called outside any service. Service modules call it; to load an "
            "application use `distdev build APP.py` or distdev.testing.load_app(APP.py)."
        )
    return service


def import_service(path: str, *, name: str | None = None) -> ServiceProxy:
    """Create the service defined in ``path`` (relative to this file) and return a proxy to it.

    Its id is this service's id + "/" + (``name`` or the file's stem). Build time only.
    """
    if not isinstance(path, str):
        raise ServiceLoadError("import_service needs a path string, like './billing.py'")
    return _calling_service("import_service").spawn(path, name)


class _Host:
    """Build-time declarations about how the calling service is hosted."""

    def process(self, *, http: int | None = None, interleave: bool = False) -> None:
        """Host this service in a process of its own; with ``http``, serve its exports as
        ``POST /<export>`` on that port (the root's ingress).

        With ``interleave``, while one of its calls waits on another service, another call may
        run: calls still run one at a time, switching only at call-outs, and the journal
        records each switch so a replay follows it. Its code must then not assume that its
        globals stay as they were across a call-out (docs/local-engine.md, "Interleaving")."""
        _check_port("host.process", http)
        if not isinstance(interleave, bool):
            raise ValueError(f"host.process(interleave=...) needs True or False, not "
                             f"{interleave!r}")
        declaration: dict[str, Any] = {"kind": "process", "http": http}
        if interleave:
            declaration["interleave"] = True
        _calling_service("host.process").declare_host(declaration)

    def function(self, *, max_instances: int = 4, http: int | None = None) -> None:
        """Host this service as a function: stateless after its build, so that an engine may
        run up to ``max_instances`` copies of it and hand each call to any of them (the local
        engine starts more processes as calls queue and stops idle ones; Ray runs actors).

        Its globals are frozen once the build is over: a call that changes one (binds it,
        appends to it, sets an attribute of what it holds) fails with ``FrozenStateError``
        naming it. ``http`` serves its exports over HTTP as ``host.process(http=...)`` does
        (the root's ingress), spread over its instances (docs/local-engine.md, "Functions")."""
        if isinstance(max_instances, bool) or not isinstance(max_instances, int) \
                or max_instances < 1:
            raise ValueError(f"host.function(max_instances=...) needs a whole number of "
                             f"instances, 1 or more, not {max_instances!r}")
        _check_port("host.function", http)
        declaration: dict[str, Any] = {"kind": "function", "http": http,
                                       "max_instances": max_instances}
        _calling_service("host.function").declare_host(declaration)

    def __repr__(self) -> str:
        return "<distdev.host>"


host = _Host()


def _check_port(declaration: str, http: object) -> None:
    if http is not None and (isinstance(http, bool) or not isinstance(http, int)
                             or not 0 < http < 65536):
        raise ValueError(f"{declaration}(http=...) needs a port number, not {http!r}")


def phase() -> str:
    """"build" or "runtime": what the calling service was doing when its journal recorded
    this. Journaled like anything else the code observes, so a replay reproduces what the code
    did with it; a replay itself is not something service code can see."""
    service = _calling_service("phase()")
    recorded = "runtime" if service.phase == "replay" else service.phase
    return str(service.effect("distdev.phase", [], lambda: recorded))


def patched(change_id: str) -> bool:
    """Whether the calling service runs with change ``change_id``: False while a replay goes
    through history recorded before its code had that change, True from the point where live
    code first asked (the journal records that point) and ever after. New code keeps the old
    behaviour for old history by branching on it::

        if distdev.patched("fee-in-cents"):
            fee = cents // 100
        else:
            fee = round(cents / 100)

    Outside a service (plain Python, a unit test) there is no old history: True."""
    if not isinstance(change_id, str) or not change_id:
        raise ValueError("patched() needs a change id, a non-empty string like 'fee-in-cents'")
    service = current_service()
    return service.patched(change_id) if isinstance(service, Service) else True


def deprecated_patch(change_id: str) -> None:
    """Once no history runs the old branch of ``change_id`` any more, replace the
    ``if patched(...)`` with its new branch alone and call this where it stood: journals that
    recorded the change still replay (their record of it is read past), and nothing more is
    recorded."""
    service = current_service()
    if isinstance(service, Service):
        service.deprecated_patch(change_id)


@overload
def effect(function: F) -> F: ...
@overload
def effect(*, name: str | None = None) -> Callable[[F], F]: ...


def effect(function: Any = None, *, name: str | None = None) -> Any:
    """Mark a function as user IO: when recording its result is journaled; when replaying the
    function is not called and the journaled result is returned (or its exception raised).

    Inside an effect, service code may use threads, sockets, subprocesses and files. Its result
    must be a value that can cross a membrane.
    """

    def decorate(fn: F) -> F:
        module = app_module_name(fn.__module__)  # the same in every service's copy
        kind = "@" + (name or f"{module}.{fn.__qualname__}")

        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            service = state.service
            if not isinstance(service, Service) or state.effect_depth:
                return fn(*args, **kwargs)
            return service.effect(kind, _effect_args(args, kwargs), lambda: fn(*args, **kwargs))

        run.__distdev_effect__ = kind  # type: ignore[attr-defined]
        return run  # type: ignore[return-value]

    return decorate(function) if function is not None else decorate


def _effect_args(args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[Any]:
    """Arguments as journaled for comparison; ones that cannot cross are named by type."""
    out = []
    for value in [*args, *kwargs.items()]:
        out.append(value if can_cross(value) else f"<{type(value).__name__}>")
    return out
