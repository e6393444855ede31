"""The session engine: what the relay knows about a distdev debug session, in its own terms.

It decides which frames are the user's, names them after their service, pages a stack, and
says whether a source file is distdev's own. It imports no protocol types: the dispatch layer
(``_relay``) converts DAP messages to these values and back.
"""

from __future__ import annotations

import ast
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Frame", "Stack", "Session", "SERVICE_SEPARATOR", "ExportTarget", "service_files",
           "export_line", "entry_line", "resolve_export"]

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


# -- the service tree, read statically from the source ------------------------------------------


def _import_service_calls(path: Path) -> list[tuple[str, str | None]]:
    """``import_service(path, name=...)`` calls with literal arguments in ``path``'s source."""
    try:
        tree = ast.parse(path.read_text(), str(path))
    except (OSError, SyntaxError, ValueError):
        return []
    found: list[tuple[str, str | None]] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        called = func.id if isinstance(func, ast.Name) else (
            func.attr if isinstance(func, ast.Attribute) else None)
        if called != "import_service" or not node.args:
            continue
        first = node.args[0]
        if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
            continue
        name: str | None = None
        for keyword in node.keywords:
            if (keyword.arg == "name" and isinstance(keyword.value, ast.Constant)
                    and isinstance(keyword.value.value, str)):
                name = keyword.value.value
        found.append((first.value, name))
    return found


def service_files(app: Path) -> dict[str, Path]:
    """Service id -> file, following ``import_service`` calls from the root service ``app``
    with the runtime's rule: a child's id is its parent's plus ``/`` plus ``name=`` (or the file
    stem); its path is relative to the importing file."""
    app = app.resolve()
    services: dict[str, Path] = {app.stem: app}
    todo = [(app.stem, app)]
    while todo:
        service_id, path = todo.pop()
        for rel, name in _import_service_calls(path):
            child = (path.parent / rel).resolve()
            child_id = f"{service_id}/{name if name is not None else Path(rel).stem}"
            if child_id not in services and child.is_file() and len(services) < 10_000:
                services[child_id] = child
                todo.append((child_id, child))
    return services


def _first_line(body: list[ast.stmt]) -> int | None:
    for statement in body:
        if (isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant)
                and isinstance(statement.value.value, str)):
            continue  # a docstring
        if isinstance(statement, ast.ImportFrom) and statement.module == "__future__":
            continue
        if isinstance(statement, (ast.Global, ast.Nonlocal)):
            continue  # declarations: no code, a breakpoint there would not bind
        return statement.lineno
    return None


def export_line(path: Path, export: str) -> int | None:
    """The first body line of the top-level ``def export`` in ``path``, or None."""
    try:
        tree = ast.parse(path.read_text(), str(path))
    except (OSError, SyntaxError, ValueError):
        return None
    line: int | None = None
    for node in tree.body:  # the last definition wins, as at run time
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == export:
            line = _first_line(node.body)
    return line


def entry_line(path: Path) -> int | None:
    """The first executable top-level line of ``path`` (after its docstring)."""
    try:
        tree = ast.parse(path.read_text(), str(path))
    except (OSError, SyntaxError, ValueError):
        return None
    return _first_line(tree.body)


@dataclass
class ExportTarget:
    """Where a function breakpoint named after an export binds, or why it cannot."""

    path: Path | None = None
    line: int | None = None
    error: str | None = None


def resolve_export(services: dict[str, Path], name: str) -> ExportTarget:
    """``app/billing.charge`` (or ``billing.charge`` when unambiguous) -> the first body line of
    ``charge`` in app/billing's file."""
    service, dot, export = name.strip().rpartition(".")
    if not dot or not service or not export:
        return ExportTarget(error=f'"{name}" does not name an export: write service.export, '
                                  'for example "app/billing.charge"')
    if service in services:
        matches = [service]
    else:
        matches = sorted(s for s in services if s.rpartition("/")[2] == service
                         or s.endswith("/" + service))
    if not matches:
        known = ", ".join(sorted(services)) or "none found"
        return ExportTarget(error=f'no service "{service}" in this application (services: '
                                  f"{known})")
    if len(matches) > 1:
        return ExportTarget(error=f'"{service}" is ambiguous ({", ".join(matches)}): write the '
                                  "full service id")
    path = services[matches[0]]
    line = export_line(path, export)
    if line is None:
        return ExportTarget(error=f'service {matches[0]} ({path.name}) has no function '
                                  f'"{export}" at its top level')
    return ExportTarget(path=path, line=line)
