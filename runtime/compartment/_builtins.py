"""The builtins a service's own modules run with: the process's (with ``open`` and ``input``
interposed, see ``_interpose``), except ``__import__`` (the compartment's), ``print`` (its
output is recorded) — and a ``builtins`` module of their own, so that code patching a builtin
changes it for this service only."""

from __future__ import annotations

import builtins
import sys
import types
from collections.abc import Callable
from typing import Any

from ._context import ServiceSide, state

__all__ = ["service_builtins"]

_real_print = builtins.print


def _service_print(svc: ServiceSide) -> Callable[..., None]:
    def print(*values: Any, sep: str | None = " ", end: str | None = "\n", file: Any = None,
              flush: bool = False) -> None:
        out = sys.stdout if file is None else file
        stream = "stdout" if out is sys.stdout else "stderr" if out is sys.stderr else None
        if stream is None or state.service is not svc or state.effect_depth:
            _real_print(*values, sep=sep, end=end, file=file, flush=flush)
            return
        text = (" " if sep is None else sep).join(map(str, values)) + ("\n" if end is None else end)
        # Recorded as output; the terminal stays quiet at replay, but a stream the code set up
        # itself (contextlib.redirect_stdout) gets its text either way: it is the code's state.
        terminal = out in state.host_streams
        if svc.output(stream, text) or not terminal:
            out.write(text)
            if flush:
                out.flush()

    return print


def service_builtins(svc: ServiceSide, importer: Callable[..., Any]) -> types.ModuleType:
    """The ``builtins`` module a service's modules import; its ``__dict__`` is the builtins
    they run with, so a change to one is a change to the other."""
    module = types.ModuleType("builtins", builtins.__doc__)
    module.__dict__.update(builtins.__dict__)
    module.__dict__.update(__name__="builtins", __import__=importer, print=_service_print(svc))
    return module
