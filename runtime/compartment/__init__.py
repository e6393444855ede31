"""Compartments: each service's own copy of the application's code, and the rules that keep
what that code does replayable.

A service's module and every application module it imports are compiled from source and executed
fresh for that service (``_importer``), under builtins of its own (``__import__``, ``open``,
``print``); two services that import one helper get two copies, as they would on two hosts. The
standard library and installed packages are shared, except the nondeterministic parts, which the
service's code receives virtualized (``_virtual``). Which service runs on a thread, and whether
it is inside an effect or observing for a debugger, is the thread context (``_context``); the
process-wide backstops for code that is not the service's own are in ``_guard``.

Isolation approaches considered, and why this one:

* ``sys.modules`` swapped per thread around each call (Temporal's sandbox): every call would pay
  for the swap, and calls between services in one process run on one thread.
* Global patches of ``time.time`` and friends, switched on by "which service is running": they
  also catch distdev's and a debugger's own calls on that thread, which must not be journaled.
* ``sys.settrace`` / audit hooks to intercept calls: too slow, or no hook for most functions.
  An audit hook is still installed, as a backstop only: it refuses sockets, subprocesses and file
  writes that shared libraries would make on a service's behalf.

Per-module builtins and virtual modules are lexical: only code compiled into the compartment sees
them, so a debugger evaluating ``time.time()`` in its own frames never touches a journal.

Layer: above ``journal``; it knows the service it isolates only as ``ServiceSide`` (a Protocol
the service layer implements).
"""

from __future__ import annotations

from ._context import ServiceSide as ServiceSide
from ._context import current_service as current_service
from ._context import guarded as guarded
from ._context import in_effect as in_effect
from ._context import next_callout_id as next_callout_id
from ._context import observing as observing
from ._context import running as running
from ._context import state as state
from ._guard import install_guards as install_guards
from ._importer import Compartment as Compartment

__all__ = ["ServiceSide", "current_service", "guarded", "in_effect", "next_callout_id",
           "observing", "running", "state", "install_guards", "Compartment"]
