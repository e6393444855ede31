"""The service graph of a workspace, built from ``ast`` alone and kept current as files change.

A proxy variable is resolved to the service file(s) it can point at:

- ``x = import_service("./p.py")`` at module level (also under ``if TYPE_CHECKING: ... else:``)
  resolves to ``p.py`` joined to the file's folder, as the runtime joins it;
- a parameter of an exported function, and a global assigned from one (``global g; g = param``),
  resolve by following every call site of that export in other services to the argument passed
  there, when that argument is a bare name resolvable in its own file, recursively.

Limits (static analysis without running build time): proxies returned by calls, stored in
containers or attributes, passed through ``*args``, or bound inside ``if``/loops with computed
paths are not followed; ``import_service`` with a non-literal path is ignored. A name that
resolves to several files (the same export called with different proxies) is checked against
each of them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from distdev import rules, tools

from ._syntax import Binding, FileInfo, Use, parse_file

__all__ = ["Index", "ServiceNode", "ExportInfo", "RESOURCE_FOLDER", "resource_file"]

RESOURCE_FOLDER = Path("/<distdev resources>")
"""Where the index keeps, as if it were a file, the methods of each kind of resource: a
``db = resources.sql(...)`` proxies ``<distdev resources>/sql.py``, a file no disk holds, whose
functions are the kind's methods (``distdev.tools.resource_kinds``). Completion, hover, arity
and unknown-method diagnostics then work on it as on a service."""


def resource_file(kind: str) -> Path:
    return RESOURCE_FOLDER / f"{kind}.py"


def _resource_source(kind: str) -> str | None:
    methods = tools.resource_kinds().get(kind)
    if methods is None:
        return None
    lines = [f'"""The methods of a {kind} resource (distdev.resources)."""', "from typing import Any", ""]
    for name, (signature, doc) in methods.items():
        lines += [f"def {name}{signature}:", f"    {doc!r}", ""]
    return "\n".join(lines)

_SKIP_DIRS = {".venv", "venv", "node_modules", "__pycache__", "build", "dist", "site-packages"}
_SCAN_LIMIT = 5000


@dataclass(frozen=True)
class ExportInfo:
    """One export as the service graph reports it."""

    name: str
    signature: str
    line: int


@dataclass
class ServiceNode:
    """A service in the tree, with the id the runtime gives it."""

    id: str
    file: str
    exports: list[ExportInfo]
    hosting: list[dict[str, object]]
    children: list[ServiceNode] = field(default_factory=list)
    error: str | None = None
    kind: str = "service"
    """``service``, or a resource's kind (``sql``, ``kv``, ``secret``): a resource is a node
    under the service that declares it, ``file`` being that service's file."""


class Index:
    """Parsed files by path: open documents from their text, the rest from disk."""

    def __init__(self) -> None:
        self._current: dict[Path, FileInfo] = {}  # the latest parse, maybe a syntax error
        self._good: dict[Path, FileInfo] = {}  # the latest parse without one
        self._open: set[Path] = set()
        self._mtimes: dict[Path, float] = {}
        self._cache: dict[tuple[Path, str, str | None], frozenset[Path]] = {}
        self._by_attr: dict[str, list[tuple[FileInfo, Use]]] | None = None
        self._apps: dict[Path, list[Path]] | None = None
        self._roots: list[Path] = []
        self._resources: dict[str, FileInfo | None] = {}

    # -- keeping files ------------------------------------------------------------------------

    def scan(self, root: Path) -> int:
        """Index every ``.py`` file under ``root`` that calls ``import_service``, and their
        targets. Returns the number of files indexed."""
        if root not in self._roots:
            self._roots.append(root)
        seen = 0
        for folder, dirs, files in os.walk(root):
            dirs[:] = [d for d in dirs if d not in _SKIP_DIRS and not d.startswith(".")]
            for name in files:
                if not name.endswith(".py"):
                    continue
                seen += 1
                if seen > _SCAN_LIMIT:
                    return len(self._good)
                path = Path(folder, name)
                try:
                    text = path.read_text(encoding="utf-8", errors="replace")
                except OSError:
                    continue
                if "import_service" in text and path not in self._current:
                    self._store(path, text)
        return len(self._good)

    def update(self, path: Path, text: str) -> FileInfo:
        """An open document's new text."""
        self._open.add(path)
        return self._store(path, text)

    def close(self, path: Path) -> None:
        """A document was closed: from now on the file on disk counts."""
        self._open.discard(path)
        self.reload(path)

    def reload(self, path: Path) -> None:
        """Read ``path`` from disk again (a vanished file is dropped), unless it is open. A new
        file in a folder the scan skips (a build's bundle copies, a virtualenv) is not taken."""
        if path in self._open or (path not in self._current and self._skipped(path)):
            return
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            self._drop(path)
            return
        self._store(path, text)

    def _skipped(self, path: Path) -> bool:
        for root in self._roots:
            try:
                folders = path.relative_to(root).parts[:-1]
            except ValueError:
                continue
            return any(d in _SKIP_DIRS or d.startswith(".") for d in folders)
        return False

    def refresh(self) -> None:
        """Re-read files that changed on disk since they were read (cheap: one stat each)."""
        for path in [p for p in self._current if p not in self._open]:
            try:
                mtime = path.stat().st_mtime
            except OSError:
                self._drop(path)
                continue
            if self._mtimes.get(path) != mtime:
                self.reload(path)

    def _drop(self, path: Path) -> None:
        self._current.pop(path, None)
        self._good.pop(path, None)
        self._mtimes.pop(path, None)
        self._changed()

    def _store(self, path: Path, text: str) -> FileInfo:
        info = parse_file(path, text)
        self._current[path] = info
        if info.error is None:
            self._good[path] = info
        elif path not in self._good:
            self._good[path] = info  # nothing better yet: an empty reading
        if path not in self._open:
            try:
                self._mtimes[path] = path.stat().st_mtime
            except OSError:
                pass
        self._changed()
        for binding in self._good[path].bindings.values():
            if binding.target is not None and binding.target not in self._current:
                self.get(binding.target)
        return info

    def _changed(self) -> None:
        self._cache.clear()
        self._by_attr = None
        self._apps = None

    def get(self, path: Path) -> FileInfo | None:
        """The last good reading of ``path``, read from disk on first use; None if absent."""
        if path.parent == RESOURCE_FOLDER:
            return self._resource(path)
        if path not in self._current:
            if not path.is_file():
                return None
            self.reload(path)
        return self._good.get(path)

    def _resource(self, path: Path) -> FileInfo | None:
        kind = path.stem
        if kind not in self._resources:
            source = _resource_source(kind)
            self._resources[kind] = None if source is None else parse_file(path, source)
        return self._resources[kind]

    def current(self, path: Path) -> FileInfo | None:
        """The latest reading, which may carry a syntax error."""
        return self._current.get(path)

    def files(self) -> list[FileInfo]:
        """Every indexed file's last good reading."""
        return list(self._good.values())

    def is_open(self, path: Path) -> bool:
        """Whether ``path`` is an open document."""
        return path in self._open

    # -- the graph ----------------------------------------------------------------------------

    def importers(self, target: Path) -> list[tuple[FileInfo, Binding]]:
        """Reverse dependencies: every binding, in any file, of the service file ``target``."""
        return [(info, b) for info in self.files() for b in info.bindings.values()
                if b.target == target]

    def resolve(self, info: FileInfo, name: str, scope: str | None) -> frozenset[Path]:
        """The service files the name ``name`` (used in ``scope`` of ``info``) may proxy."""
        key = (info.path, name, scope)
        if key not in self._cache:
            self._cache[key] = self._resolve(info, name, scope, frozenset())
        return self._cache[key]

    def _resolve(self, info: FileInfo, name: str, scope: str | None,
                 seen: frozenset[tuple[Path, str, str | None]]) -> frozenset[Path]:
        key = (info.path, name, scope)
        if key in seen:
            return frozenset()
        seen = seen | {key}
        local = info.scopes.get(scope) if scope is not None else None
        if local is not None and name in local.params:
            return self._passed(info, scope or "", name, seen)
        if local is not None and name in local.locals:
            return frozenset()
        binding = info.bindings.get(name)
        if binding is not None:
            return frozenset({binding.target}) if binding.target is not None else frozenset()
        if name in info.resources:
            return frozenset({resource_file(info.resources[name][0])})
        if name in info.injected:
            func, param = info.injected[name]
            return self._passed(info, func, param, seen)
        return frozenset()

    def _passed(self, info: FileInfo, func: str, param: str,
                seen: frozenset[tuple[Path, str, str | None]]) -> frozenset[Path]:
        """What callers in other services pass as ``param`` of the export ``func`` of ``info``."""
        fn = info.functions.get(func)
        if fn is None or func not in info.exports():
            return frozenset()
        positional = [p.name for p in fn.params if p.kind in ("posonly", "normal")]
        index = positional.index(param) if param in positional else None
        found: set[Path] = set()
        for caller, use in self.uses_by_attr().get(func, []):
            if use.call is None or info.path not in self._resolve(caller, use.base, use.scope, seen):
                continue
            plain = [a for a in use.call if a.keyword is None]
            arg = next((a for a in use.call if a.keyword == param), None)
            if arg is None and index is not None and index < len(plain):
                arg = plain[index]
            if arg is not None and arg.name is not None:
                found |= self._resolve(caller, arg.name, use.scope, seen)
        return frozenset(found)

    def uses_by_attr(self) -> dict[str, list[tuple[FileInfo, Use]]]:
        """Every ``name.attr`` in the workspace, grouped by ``attr``."""
        if self._by_attr is None:
            grouped: dict[str, list[tuple[FileInfo, Use]]] = {}
            for info in self.files():
                for use in info.uses:
                    grouped.setdefault(use.attr, []).append((info, use))
            self._by_attr = grouped
        return self._by_attr

    def targets_of(self, info: FileInfo, use: Use) -> list[FileInfo]:
        """The indexed service files ``use.base`` may proxy, in path order."""
        out = []
        for path in sorted(self.resolve(info, use.base, use.scope)):
            target = self.get(path)
            if target is not None:
                out.append(target)
        return out

    def uses_of(self, path: Path, export: str) -> list[tuple[FileInfo, Use]]:
        """Every ``proxy.export`` in the workspace whose proxy may point at ``path``."""
        return [(info, use) for info, use in self.uses_by_attr().get(export, [])
                if path in self.resolve(info, use.base, use.scope)]

    def cycles(self) -> list[list[Path]]:
        """Cycles of services importing each other, each as ``[a, b, ..., a]``, deduplicated."""
        found: dict[frozenset[Path], list[Path]] = {}
        edges = {info.path: [b.target for b in info.bindings.values() if b.target is not None]
                 for info in self.files()}

        def walk(path: Path, stack: list[Path], on_stack: set[Path], done: set[Path]) -> None:
            stack.append(path)
            on_stack.add(path)
            for nxt in edges.get(path, []):
                if nxt in on_stack:
                    cycle = stack[stack.index(nxt):] + [nxt]
                    found.setdefault(frozenset(cycle), cycle)
                elif nxt not in done and len(stack) < 200:
                    walk(nxt, stack, on_stack, done)
            stack.pop()
            on_stack.discard(path)
            done.add(path)

        done: set[Path] = set()
        for start in sorted(edges):
            if start not in done:
                walk(start, [], set(), done)
        return list(found.values())

    # -- the service tree ---------------------------------------------------------------------

    def roots(self) -> list[Path]:
        """Files that import services and are imported by none: the applications' roots."""
        imported = {b.target for info in self.files() for b in info.bindings.values()}
        return sorted(info.path for info in self.files()
                      if info.path not in imported and (info.bindings or info.hosts))

    def apps_of(self, path: Path) -> list[Path]:
        """The root service files whose service tree holds ``path`` (its own path if it is a
        root): each root's folder is an application folder, as ``distdev build`` sees it."""
        if self._apps is None:
            apps: dict[Path, list[Path]] = {}
            for root in self.roots():
                todo, seen = [root], {root}
                while todo:
                    current = todo.pop()
                    apps.setdefault(current, []).append(root)
                    info = self._good.get(current)
                    for spawn in info.spawns if info is not None else []:
                        if spawn.target is not None and spawn.target not in seen \
                                and spawn.target in self._good:
                            seen.add(spawn.target)
                            todo.append(spawn.target)
            self._apps = apps
        return self._apps.get(path, [])

    def tree(self, root: Path) -> ServiceNode:
        """The service tree under ``root``, ids as the runtime computes them."""
        return self._node(root, root.stem, ())

    def _node(self, path: Path, service_id: str, ancestors: tuple[Path, ...]) -> ServiceNode:
        info = self.get(path)
        if info is None:
            return ServiceNode(service_id, str(path), [], [], error="no such file")
        node = ServiceNode(
            id=service_id, file=str(path),
            exports=[ExportInfo(n, f.signature() if f else n, f.span.line if f else 0)
                     for n, f in info.exports().items()],
            hosting=[{"kind": h.kind, "http": h.http, **({"interleave": True} if h.interleave
                                                          else {})}
                     for h in info.hosts],  # as the build's declaration: interleave when on
        )
        if path in ancestors:
            node.error = "cycle: this service imports itself through its children"
            return node
        for b in info.bindings.values():
            local = b.local_name
            if b.target is None or local is None:  # the literal names no file
                continue
            child_id = rules.child_id(service_id, local)
            node.children.append(self._node(b.target, child_id, (*ancestors, path)))
        for name, (kind, _span) in info.resources.items():
            node.children.append(self._resource_node(path, service_id, info, name, kind))
        return node

    def _resource_node(self, path: Path, service_id: str, info: FileInfo, variable: str,
                       kind: str) -> ServiceNode:
        """A ``resources.<kind>("name")`` of ``info``, as the runtime names it: the literal
        name under the declaring service (the variable's name when it is not a literal)."""
        methods = self.get(resource_file(kind))
        name = info.resource_names.get(variable, variable)
        return ServiceNode(
            id=rules.child_id(service_id, name), file=str(path),
            exports=[ExportInfo(n, f.signature() if f else n, 0)
                     for n, f in (methods.exports().items() if methods else [])],
            hosting=[], kind=kind,
            error=None if methods is not None else f"no kind of resource {kind!r}")

