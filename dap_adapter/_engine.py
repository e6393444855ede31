"""The session engine: what the relay knows about a distdev program, in its own terms.

Two things, neither of them protocol:

- **Whose code a frame is.** ``RuntimeFiles`` says whether a source file is distdev's own (the
  membrane between services, this adapter's debuggee side); a ``Stack`` keeps the user's frames
  of a stop, each named after its service; ``user_traceback`` takes distdev out of a traceback.
- **The service tree, read statically.** ``service_files`` follows ``import_service`` calls
  from the root service; ``resolve_export`` finds where a function breakpoint named after an
  export (``app/billing.charge``) binds. Both apply ``distdev.rules`` — the rules the runtime
  applies to live objects — so a breakpoint binds exactly where a proxy call would land.

The dispatch layer (``_client``, ``_server``) converts DAP messages to these values and back.
"""

from __future__ import annotations

import ast
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from distdev import rules

__all__ = ["Frame", "Stack", "RuntimeFiles", "ReplaySources", "file_key", "SERVICE_SEPARATOR",
           "user_traceback", "ExportTarget", "service_files", "export_line", "entry_line", "resolve_export",
           "module_label"]

SERVICE_SEPARATOR = " \u203a "  # "app/orders › place"
MAX_SERVICES = 10_000  # a runaway tree (generated source) is cut here, not followed forever


# -- frames --------------------------------------------------------------------------------------


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

    @property
    def service(self) -> str | None:
        """The service the innermost user frame runs in."""
        return next((f.service for f in self.frames if f.service), None)


@dataclass(frozen=True)
class RuntimeFiles:
    """distdev's own folders: frames there are hidden, breakpoints there refused."""

    dirs: tuple[str, ...]

    def is_runtime_file(self, path: str | None) -> bool:
        """Whether ``path`` is one of distdev's own files (membrane, runner)."""
        if not path:
            return False
        candidates = {os.path.normcase(os.path.abspath(path))}
        try:
            candidates.add(os.path.normcase(str(Path(path).resolve())))
        except OSError:
            pass
        roots = [os.path.normcase(d).rstrip(os.sep) + os.sep for d in self.dirs]
        return any(c.startswith(root) for c in candidates for root in roots)

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


def file_key(path: str) -> str:
    """One key per file, however a client spells its path."""
    return os.path.normcase(os.path.realpath(path))


@dataclass(frozen=True)
class ReplaySources:
    """A replay whose code changed on disk since the journal was recorded runs the journal's own
    code, written to distdev's bundle cache. A file the same on disk as in the journal is mapped
    to its copy there (its breakpoints bind to the code that runs, its frames show the user's
    file); a changed one is not (its lines are not the ones that run): its breakpoints are
    unverified, saying so, and its frames show the journal's copy."""

    copies: dict[str, str]
    """file_key of each of the journal's files on disk -> the bundle copy that runs."""
    changed: frozenset[str]
    """file_keys of the files whose disk code is not the journal's."""

    def running(self, path: str) -> str | None:
        """The copy that runs for the unchanged file ``path``; None if it is not mapped."""
        key = file_key(path)
        return None if key in self.changed else self.copies.get(key)

    def on_disk(self, copy: str) -> str | None:
        """The user's file a bundle copy of an unchanged file stands for, or None."""
        key = file_key(copy)
        return next((disk for disk, c in self.copies.items()
                     if file_key(c) == key and disk not in self.changed), None)

    def unverified_reason(self, path: str) -> str | None:
        key = file_key(path)
        if key not in self.changed:
            return None
        return (f"{Path(path).name} changed since the journal was recorded: the replay runs the "
                f"journal's code, from {self.copies[key]} (the call stack shows it). Set "
                "breakpoints there, or give the journal's code back to this file")


_FILE_LINE = re.compile(r'^\s*File "(?P<path>[^"]+)", line \d+')
_CHAINED = re.compile(r"\n(?:During handling of the above exception, another exception "
                      r"occurred|The above exception was the direct cause of the following "
                      r"exception):\n\n")


def user_traceback(trace: str, is_runtime_file: Callable[[str], bool]) -> str:
    """A formatted traceback without distdev's frames (each ``File`` line and the source lines
    under it), and without the chained sections that are only distdev's own exceptions (the
    membrane's wrapper around a call that failed in another service)."""
    pieces = _CHAINED.split(trace)
    separators = _CHAINED.findall(trace)
    kept: list[tuple[str, str]] = []  # (separator before it, section)
    for index, piece in enumerate(pieces):
        section = _user_frames(piece, is_runtime_file)
        if len(pieces) > 1 and _only_distdev(section):
            continue
        kept.append((separators[index - 1] if index else "", section))
    if not kept:
        return trace
    return kept[0][1] + "".join(separator + section for separator, section in kept[1:])


def _only_distdev(section: str) -> bool:
    """A section with no frame left whose exception is one of distdev's own."""
    lines = [line for line in section.splitlines() if line.strip()]
    return (bool(lines) and not any(_FILE_LINE.match(line) for line in lines)
            and lines[-1].startswith("distdev."))


def _user_frames(trace: str, is_runtime_file: Callable[[str], bool]) -> str:
    kept: list[str] = []
    dropping = False
    for line in trace.splitlines(keepends=True):
        match = _FILE_LINE.match(line)
        if match is not None:
            dropping = is_runtime_file(match.group("path"))
        elif not line.startswith((" ", "\t")):
            dropping = False  # "Traceback ...", the exception line
        if not dropping:
            kept.append(line)
    return "".join(kept)


def module_label(name: str, path: str | None, runtime: RuntimeFiles,
                 services: dict[str, Path]) -> str | None:
    """How the modules view names a loaded module: None for distdev's own (hidden, as its frames
    are; ``__main__`` is distdev's runner); a service's own module by its service id; another
    application module's copy in a service's compartment as ``service › module``; anything else
    (the standard library, installed packages) as it is."""
    if runtime.is_runtime_file(path):
        return None
    found = rules.compartment_of(name)
    if found is None:
        return name
    module, service = found
    own = services.get(service)
    if own is not None and path is not None and _same_file(own, path):
        return service
    return f"{service}{SERVICE_SEPARATOR}{module}"


def _same_file(a: Path, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


# -- the service tree, read statically from the source ------------------------------------------


def _parse(path: Path) -> ast.Module | None:
    try:
        return ast.parse(path.read_text(), str(path))
    except (OSError, SyntaxError, ValueError):
        return None


def _import_service_calls(tree: ast.Module) -> list[tuple[str, str | None]]:
    """``import_service(path, name=...)`` calls with literal arguments: (path, name)."""
    found: list[tuple[str, str | None]] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        func = node.func
        called = func.id if isinstance(func, ast.Name) else (
            func.attr if isinstance(func, ast.Attribute) else None)
        first = node.args[0]
        if called != "import_service" or not (isinstance(first, ast.Constant)
                                              and isinstance(first.value, str)):
            continue
        name = next((k.value.value for k in node.keywords
                     if k.arg == "name" and isinstance(k.value, ast.Constant)
                     and isinstance(k.value.value, str)), None)
        found.append((first.value, name))
    return found


def service_files(app: Path) -> dict[str, Path]:
    """Service id -> file, following ``import_service`` calls from the root service ``app``
    by the runtime's rules (``distdev.rules``): a child's file is relative to its importer and
    inside the application folder; its id is its parent's plus ``name=`` (or the file's stem).
    A call the runtime would refuse creates no service here either."""
    app = app.resolve()
    folder, root_id = app.parent, rules.default_service_name(app.name)
    services: dict[str, Path] = {root_id: app}
    todo = [(root_id, app.name)]  # (service id, its file relative to the folder)
    while todo:
        service_id, rel = todo.pop()
        tree = _parse(folder / rel)
        for literal, name in _import_service_calls(tree) if tree is not None else []:
            child = _child(service_id, rel, literal, name)
            if child is None or child[0] in services or len(services) >= MAX_SERVICES:
                continue
            child_id, child_rel = child
            if (folder / child_rel).is_file():
                services[child_id] = folder / child_rel
                todo.append(child)
    return services


def _child(parent_id: str, importer: str, literal: str,
           name: str | None) -> tuple[str, str] | None:
    """The (id, file) ``import_service(literal, name=name)`` creates, or None if refused."""
    try:
        rel = rules.resolve_service_path(importer, literal)
    except rules.ServicePathError:
        return None
    local = name if name is not None else rules.default_service_name(rel)
    if rules.service_name_problem(local) is not None:
        return None
    return rules.child_id(parent_id, local), rel


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


def entry_line(path: Path) -> int | None:
    """The first executable top-level line of ``path`` (after its docstring)."""
    tree = _parse(path)
    return _first_line(tree.body) if tree is not None else None


@dataclass(frozen=True)
class _ModuleExports:
    """A service module's top level as the export rule reads it."""

    defs: dict[str, ast.FunctionDef | ast.AsyncFunctionDef]  # the last ``def`` of each name
    candidates: list[rules.ExportCandidate]
    all_names: list[str] | None

    @classmethod
    def read(cls, tree: ast.Module) -> _ModuleExports:
        defs: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = {}
        imported: list[str] = []
        all_names: list[str] | None = None
        for node in tree.body:  # the last definition wins, as at run time
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                defs[node.name] = node
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                imported += [(a.asname or a.name).partition(".")[0] for a in node.names]
            elif (isinstance(node, ast.Assign) and len(node.targets) == 1
                  and isinstance(node.targets[0], ast.Name) and node.targets[0].id == "__all__"
                  and isinstance(node.value, (ast.List, ast.Tuple))):
                all_names = [e.value for e in node.value.elts
                             if isinstance(e, ast.Constant) and isinstance(e.value, str)]
        candidates = [rules.ExportCandidate(name, True, _is_effect(node))
                      for name, node in defs.items()]
        candidates += [rules.ExportCandidate(name, False) for name in imported
                       if name not in defs]
        return cls(defs, candidates, all_names)

    def exports(self) -> list[str]:
        return rules.export_names(self.candidates, self.all_names)

    def why_not(self, name: str) -> str:
        """Why the ``def name`` here is not an export."""
        if self.all_names is not None:
            return "its __all__ does not list it"
        if not rules.is_public(name):
            return "a name starting with '_' is private to its service"
        return "an @effect function is the service's own IO"


def _is_effect(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    spelled = {ast.unparse(d.func if isinstance(d, ast.Call) else d) for d in node.decorator_list}
    return not rules.EFFECT_DECORATORS.isdisjoint(spelled)


def export_line(path: Path, export: str) -> int | None:
    """The first body line of the top-level ``def export`` in ``path``, or None."""
    tree = _parse(path)
    node = _ModuleExports.read(tree).defs.get(export) if tree is not None else None
    return _first_line(node.body) if node is not None else None


@dataclass
class ExportTarget:
    """Where a function breakpoint named after an export binds, or why it cannot."""

    path: Path | None = None
    line: int | None = None
    error: str | None = None


def resolve_export(services: dict[str, Path], name: str) -> ExportTarget:
    """``app/billing.charge`` (or ``billing.charge`` when unambiguous) -> the first body line of
    ``charge`` in app/billing's file, if ``charge`` is an export (``distdev.rules``)."""
    service, dot, export = name.strip().rpartition(".")
    if not dot or not service or not export:
        return ExportTarget(error=f'"{name}" does not name an export: write service.export, '
                                  'for example "app/billing.charge"')
    matches = [service] if service in services else sorted(
        s for s in services if s.rpartition("/")[2] == service or s.endswith("/" + service))
    if not matches:
        known = ", ".join(sorted(services)) or "none found"
        return ExportTarget(error=f'no service "{service}" in this application (services: '
                                  f"{known})")
    if len(matches) > 1:
        return ExportTarget(error=f'"{service}" is ambiguous ({", ".join(matches)}): write the '
                                  "full service id")
    return _bind_export(matches[0], services[matches[0]], export)


def _bind_export(service: str, path: Path, export: str) -> ExportTarget:
    tree = _parse(path)
    module = _ModuleExports.read(tree) if tree is not None else None
    node = module.defs.get(export) if module is not None else None
    if module is None or node is None:
        return ExportTarget(error=f'service {service} ({path.name}) has no function '
                                  f'"{export}" at its top level')
    if export not in module.exports():
        return ExportTarget(error=f'"{export}" in service {service} ({path.name}) is not an '
                                  f"export ({module.why_not(export)}): a function breakpoint "
                                  "names a function other services call; set a line "
                                  "breakpoint to stop in it")
    line = _first_line(node.body)
    if line is None:
        return ExportTarget(error=f'"{export}" in service {service} ({path.name}) has no '
                                  "code to stop on (only a docstring)")
    return ExportTarget(path=path, line=line)
