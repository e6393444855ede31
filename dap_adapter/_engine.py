"""The session engine: what the relay knows about a distdev debug session, in its own terms.

It decides which frames are the user's, names them after their service, pages a stack, and
says whether a source file is distdev's own. It imports no protocol types: the dispatch layer
(``_relay``) converts DAP messages to these values and back.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Frame", "Stack", "Session", "SERVICE_SEPARATOR"]

SERVICE_SEPARATOR = " \u203a "  # "app/orders › place"


@dataclass
class Frame:
    """One frame as debugpy reported it: its id stays debugpy's, so scopes and variables work."""

    id: int
    name: str
    path: str | None
    service: str | None = None

    @property
    def label(self) -> str:
        return self.name if self.service is None else f"{self.service}{SERVICE_SEPARATOR}{self.name}"


@dataclass
class Stack:
    """A thread's whole visible stack at one stop."""

    frames: list[Frame]

    def page(self, start: int, levels: int) -> list[Frame]:
        end = len(self.frames) if levels <= 0 else start + levels
        return self.frames[start:end]


@dataclass
class Session:
    """State shared by the relay's components for one debug session."""

    runtime_dirs: list[str]
    mode: str | None = None
    stacks: dict[int, Stack] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def is_runtime_file(self, path: str | None) -> bool:
        """Whether ``path`` is one of distdev's own files (membrane, runner)."""
        if not path:
            return False
        candidates = {os.path.normcase(os.path.abspath(path))}
        try:
            candidates.add(os.path.normcase(str(Path(path).resolve())))
        except OSError:
            pass
        for candidate in candidates:
            for directory in self.runtime_dirs:
                root = os.path.normcase(directory).rstrip(os.sep) + os.sep
                if candidate.startswith(root):
                    return True
        return False

    def visible(self, frames: list[Frame]) -> list[Frame]:
        """The user's frames: distdev's membrane and runner frames are dropped."""
        return [f for f in frames if not self.is_runtime_file(f.path)]

    def unverified_reason(self, path: str) -> str | None:
        """Why a breakpoint in ``path`` can never hit, or None if it can."""
        if self.is_runtime_file(path):
            return (
                "distdev's own code (the membrane between services) is not debugged: a "
                "breakpoint here never hits. Set it in the service code on either side of the "
                "call instead."
            )
        return None

    # -- stacks, one per suspended thread, valid until the program runs again --------------

    def cached_stack(self, thread_id: int) -> Stack | None:
        with self.lock:
            return self.stacks.get(thread_id)

    def remember_stack(self, thread_id: int, stack: Stack) -> None:
        with self.lock:
            self.stacks[thread_id] = stack

    def resumed(self) -> None:
        """The program ran: every frame id is stale."""
        with self.lock:
            self.stacks.clear()
