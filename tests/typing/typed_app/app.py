"""The spelling standard checkers understand: a proxy typed as the module it stands for."""

from __future__ import annotations

from typing import TYPE_CHECKING

from distdev import ServiceProxy, import_service

if TYPE_CHECKING:
    import billing
else:
    billing = import_service("./billing.py")

untyped: ServiceProxy = import_service("./billing.py", name="again")


def ok() -> str:
    return billing.charge("ann", 1200)


def wrong_argument() -> str:
    return billing.charge("ann", "1200")  # @error: arg-type


def wrong_result() -> int:
    return billing.charge("ann", 1200)  # @error: return-value


def unknown_export() -> None:
    billing.refund("ann")  # @error: attr-defined


def through_plain_proxy() -> object:
    return untyped.anything(1, 2)  # any name type-checks on an untyped proxy
