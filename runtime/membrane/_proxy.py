"""Service proxies: the only handle one service has on another.

A proxy exposes its service's exports and nothing else. It keeps its target id and routing in
slots that ordinary attribute access cannot reach: ``__getattribute__`` answers only export names,
so ``proxy.__dict__``, ``proxy.__class__.__init__.__globals__`` or ``proxy.charge.__globals__``
get an ``ExportError`` instead of a path into distdev's or the other service's internals.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any, Protocol

from ..errors import ExportError

__all__ = ["ServiceProxy", "Router", "make_proxy", "target_of", "holder_of", "export_of",
           "export_reference", "is_export"]


class Router(Protocol):
    """Carries a proxy's calls: in-process, from a journal, or over the network."""

    def call(
        self, holder: Any, target: str, export: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any: ...

    def exports(self, target: str) -> Collection[str] | None:
        """The target's export names, or None if this router does not know them.

        A router may also define ``exports_settled(target) -> bool``: True once its answer for
        ``target`` can no longer change, nor be asked of it in a way a journal records (then a
        proxy keeps each export's callable instead of asking again at every access).

        And ``bind(holder, target, export) -> send | None``: what the export's callable runs,
        ``send(args, kwargs)``, made once for it (a router that can do some of a call's work
        ahead, once per export); None, or no ``bind``, and each call is ``call(...)``."""
        ...


_get = object.__getattribute__


class ServiceProxy:
    """A reference to a service. Attribute access gives its exports; calls cross its membrane.

    Proxies compare equal when they point at the same service. They cross membranes by
    reference: passing one to another service hands over a proxy to the same service.
    """

    __slots__ = ("_target", "_router", "_holder", "_calls")

    def __getattribute__(self, name: str) -> Any:
        calls: dict[str, _ExportCall] = _get(self, "_calls")
        call = calls.get(name)
        if call is not None:
            return call
        router: Router = _get(self, "_router")
        target: str = _get(self, "_target")
        if name.startswith("_"):  # never an export: Python's own lookups (__class__) ask no one
            raise ExportError(
                f"service {target} does not export {name!r}: a name starting with '_' is "
                "private to its service, and a proxy reaches only a service's exports")
        exports = router.exports(target)
        if exports is None or name in exports:
            call = _ExportCall(self, name)
            settled = getattr(router, "exports_settled", None)
            if settled is not None and settled(target):
                calls[name] = call  # resolved once per proxy from now on
            return call
        raise ExportError(_refusal(target, name, exports))

    if False:  # pragma: no cover - seen by type checkers only: exports are dynamic

        def __getattr__(self, name: str) -> Any: ...

    def __repr__(self) -> str:
        return f"<ServiceProxy {_get(self, '_target')}>"

    def __eq__(self, other: object) -> bool:
        return type(other) is ServiceProxy and _get(self, "_target") == _get(other, "_target")

    def __hash__(self) -> int:
        return hash(("distdev-proxy", _get(self, "_target")))

    def __copy__(self) -> ServiceProxy:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> ServiceProxy:
        return self

    def __reduce__(self) -> Any:
        raise ExportError(
            f"a proxy to {_get(self, '_target')} cannot be pickled; it crosses membranes by "
            "itself when passed as an argument"
        )


def _refusal(target: str, name: str, exports: Collection[str] | None) -> str:
    listed = ", ".join(exports) if exports else "nothing"
    return (
        f"service {target} does not export {name!r}; a proxy reaches only a service's exports "
        f"({listed}). To reach {name!r}, add it to {target}'s __all__ (or make it a public "
        "top-level function)."
    )


class ExportCallBase:
    """A proxy's export: the proxy, the export's name and what a call runs, ``send(args,
    kwargs)`` (the router's ``bind`` for it, or its ``call``).

    The reference for ``_calls.ExportCallBase``, the same in C, which the package uses where
    it was built with a compiler: there a call hands its own argument tuple and keyword dict
    to ``send``, with no Python frame of its own (a service's every call to another passes
    here)."""

    __slots__ = ("_proxy", "_export", "_send")

    def __init__(self, proxy: ServiceProxy, export: str,
                 send: Callable[[tuple[Any, ...], dict[str, Any]], Any]) -> None:
        object.__setattr__(self, "_proxy", proxy)
        object.__setattr__(self, "_export", export)
        object.__setattr__(self, "_send", send)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return _get(self, "_send")(args, kwargs)


def _export_call_base() -> type[ExportCallBase]:
    try:
        from ._calls import ExportCallBase as NativeExportCallBase
    except ImportError:  # a build without a compiler: the reference calls the same way
        return ExportCallBase
    return NativeExportCallBase  # type: ignore[return-value]  # the same, in C


class _ExportCall(_export_call_base()):  # type: ignore[misc]  # the base is chosen at import
    """A callable for one export, bound to its proxy. Like the proxy, it exposes nothing else.

    What a call runs is the router's ``bind`` for it when the router has one (made with the
    callable, so a call reads one slot), else its ``call``."""

    __slots__ = ()

    def __init__(self, proxy: ServiceProxy, export: str) -> None:
        router: Router = _get(proxy, "_router")
        holder, target = _get(proxy, "_holder"), _get(proxy, "_target")
        bind = getattr(router, "bind", None)
        bound = None if bind is None else bind(holder, target, export)
        super().__init__(proxy, export,
                         bound if bound is not None else _routed(router, holder, target, export))

    def __getattribute__(self, name: str) -> Any:
        proxy = _get(self, "_proxy")
        raise ExportError(
            f"{_get(proxy, '_target')}.{_get(self, '_export')} is a remote export; it can only be "
            f"called, so it has no attribute {name!r}"
        )

    def __repr__(self) -> str:
        proxy = _get(self, "_proxy")
        return f"<export {_get(proxy, '_target')}.{_get(self, '_export')}>"


def _routed(router: Router, holder: Any, target: str, export: str
            ) -> Callable[[tuple[Any, ...], dict[str, Any]], Any]:
    """A call to ``target.export`` through the router's ``call`` (a router without ``bind``,
    or whose ``bind`` left this export to it)."""
    def send(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return router.call(holder, target, export, args, kwargs)

    return send


def make_proxy(target: str, router: Router, holder: Any = None) -> ServiceProxy:
    """A proxy to ``target`` whose calls go through ``router`` on behalf of ``holder``."""
    proxy = object.__new__(ServiceProxy)
    object.__setattr__(proxy, "_target", target)
    object.__setattr__(proxy, "_router", router)
    object.__setattr__(proxy, "_holder", holder)
    object.__setattr__(proxy, "_calls", {})
    return proxy


def target_of(proxy: ServiceProxy) -> str:
    """The id of the service a proxy points at."""
    target: str = _get(proxy, "_target")
    return target


def is_export(value: Any) -> bool:
    """Whether ``value`` is one export of a proxy (``billing.charge``, not called)."""
    return type(value) is _ExportCall


def export_reference(value: Any) -> tuple[ServiceProxy, str]:
    """The proxy and export name of an export (``is_export``): what it crosses a membrane as,
    so that a service can hand one of another's exports on (``jobs.consume(mailer.send)``)."""
    return _get(value, "_proxy"), _get(value, "_export")


def export_of(proxy: ServiceProxy, export: str) -> Any:
    """The export ``export`` of ``proxy``, without asking its router whether it exists: a
    value received as a reference to it (its service checks the name when it is called)."""
    return _ExportCall(proxy, export)


def holder_of(proxy: ServiceProxy) -> Any:
    """The service a proxy was handed to (None for a proxy held outside any service)."""
    return _get(proxy, "_holder")
