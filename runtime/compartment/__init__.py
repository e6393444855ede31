"""Compartments: each service's own copy of the application's code, and the rules that keep
what that code does replayable.

A service's module and every application module it imports are compiled from source and executed
fresh for that service (``_importer``), under builtins of its own (``__import__``, ``print``,
and a ``builtins`` module of its own: ``_builtins``); two services that import one helper get two
copies, as they would on two hosts. The standard library and installed packages are shared, and
so is their coverage: every line that runs for a service, wherever it was imported from, reaches
the world through the interposed functions (``_interpose``) that the classification table
(``_surface``) names, or is refused by the audit hook (``_guard``). Files are seen through the
service's own view (``_files``). Which service runs on a thread, and whether it is inside an
effect or observing for a debugger, is the thread context (``_context``).

Isolation approaches considered, and why this one:

* ``sys.modules`` swapped per thread around each call (Temporal's sandbox): every call would pay
  for the swap, calls between services in one process run on one thread, and libraries imported
  once stay uncovered.
* Per-service copies of the nondeterministic stdlib modules, seen only by the app's own code
  (distdev's first design): libraries the service calls (jinja2 reading a template, email.utils
  reading the clock) reached the real world unseen.
* Interposing process-wide, dispatching on "which service is running": kept. Plain patches would
  also catch distdev's and a debugger's own calls on a service's thread, which must not be
  journaled, so each dispatcher reads the stack to the first frame that is either service code
  (covered) or distdev's, pydevd's or the import system's (not).
* ``sys.settrace`` / audit hooks alone: too slow, or no hook for most functions (there is none
  for the clock); the audit hook is the backstop for what the table does not name.

Layer: above ``journal``; it knows the service it isolates only as ``ServiceSide`` (a Protocol
the service layer implements).
"""

from __future__ import annotations

from ._context import Files as Files
from ._context import ServiceSide as ServiceSide
from ._context import current_service as current_service
from ._context import enter_from_outside as enter_from_outside
from ._context import guarded as guarded
from ._context import in_effect as in_effect
from ._context import next_callout_id as next_callout_id
from ._context import observing as observing
from ._context import running as running
from ._context import state as state
from ._files import FileView as FileView
from ._guard import install_guards as install_guards
from ._importer import Compartment as Compartment
from ._interpose import acting_service as acting_service
from ._interpose import enter_decimal as enter_decimal
from ._interpose import environ_writes as environ_writes
from ._interpose import leave_decimal as leave_decimal
from ._interpose import restore_decimal as restore_decimal
from ._interpose import restore_environ_writes as restore_environ_writes

__all__ = ["Files", "FileView", "acting_service", "ServiceSide", "current_service", "guarded",
           "in_effect", "next_callout_id", "observing", "running", "state", "install_guards",
           "Compartment", "enter_from_outside", "enter_decimal", "leave_decimal", "restore_decimal",
           "environ_writes", "restore_environ_writes"]
