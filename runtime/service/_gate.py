"""The call gate: actor semantics for one service."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

__all__ = ["CallGate", "CallGateReference", "NATIVE_GATE"]


class CallGateReference:
    """One call at a time per service; a call on the chain already inside may re-enter, but
    only while that chain waits in an outgoing call.

    Two locks: ``_chain_lock`` is held by one call chain from its first entry to its last exit,
    so other chains wait; ``_token`` is held by whichever level of that chain is running, and
    released while it waits in a call out (``suspend``/``resume``), which is when a call coming
    back on the same chain (A -> B -> A, on this thread or, across processes, on another) may
    run. Two calls that claim one chain at once therefore still run one at a time.

    A service that interleaves its calls (``interleave``) keeps the token alone: any call may
    enter while the running one waits in a call out, and a call whose call out returned waits
    for the token before it goes on. Calls still run one at a time, switching only where one
    waits on another service, so the journal's order of records is the order things happened.

    The reference for ``_callgate.CallGate``, the same in C, which services use where the
    package was built with a compiler (``CallGate``): a membrane call enters one gate and
    suspends another, and in Python that costs more than the call's records.
    """

    __slots__ = ("_chain_lock", "_token", "_chain", "_depth", "interleaving")  # read at every call

    def __init__(self) -> None:
        self._chain_lock = threading.Lock()
        self._token = threading.Lock()
        self._chain: str | None = None
        self._depth = 0
        self.interleaving = False

    def interleave(self) -> None:
        """From now on, let another chain's call run while one waits in a call out. Declared by
        the service's top level, which holds the gate: its exit releases the chain lock."""
        self.interleaving = True

    def enter(self, chain: str) -> None:
        if self.interleaving:
            self._token.acquire()
            self._depth += 1
            return
        if self._depth and self._chain == chain:
            self._token.acquire()
            if self._depth and self._chain == chain:
                self._depth += 1
                return
            self._token.release()  # the chain left meanwhile: wait like any other
        self._chain_lock.acquire()
        self._token.acquire()
        self._chain = chain
        self._depth = 1

    def enter_if_free(self) -> bool:
        """Enter only if no call is inside, none waiting in a call out either; never wait.
        For work that must find the service at rest and must not hold up a call (a
        checkpoint taken after a call's answer left): whoever is inside may be waiting for
        this very thread to serve it."""
        if self._depth:
            return False
        if not self.interleaving and not self._chain_lock.acquire(blocking=False):
            return False
        if not self._token.acquire(blocking=False):
            if not self.interleaving:
                self._chain_lock.release()
            return False
        if self._depth:  # interleaving: a call came in and went out to wait meanwhile
            self._token.release()
            return False
        self._chain = None
        self._depth = 1
        return True

    def exit(self) -> None:
        self._depth -= 1
        if self._depth:
            self._token.release()
            return
        self._chain = None
        self._token.release()
        if not self.interleaving or self._chain_lock.locked():
            self._chain_lock.release()

    def held(self) -> bool:
        return self._depth > 0

    def alone(self) -> bool:
        """Whether at most one call is inside (the one asking), none waiting in a call out."""
        return self._depth <= 1

    def suspend(self) -> None:
        """The running level waits in a call out: let its chain (or, interleaving, any call)
        come in until ``resume``."""
        self._token.release()

    def resume(self) -> None:
        self._token.acquire()


def _fast_call_gate() -> tuple[type[CallGateReference], bool]:
    try:
        from ._callgate import CallGate as NativeCallGate
    except ImportError:  # a build without a compiler: the reference keeps the same rules
        return CallGateReference, False
    return NativeCallGate, True  # type: ignore[return-value]  # the same methods, in C


if TYPE_CHECKING:  # checkers see the reference, whose methods the C gate has
    CallGate = CallGateReference
    NATIVE_GATE: bool
else:
    CallGate, NATIVE_GATE = _fast_call_gate()
"""The gate services use, and whether it is the C module's (``tests/test_units.py`` and
``tests/test_interleave.py`` run the gate's tests on both)."""
