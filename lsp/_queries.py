"""Answers at a cursor position, through proxies: definition, hover, completion, signature
help, references, rename, and the typed-spelling rewrite. Protocol-free: the server converts.

Completion and signature help read the raw text before the cursor (the document usually does
not parse while a call is being typed) and resolve names with the file's last good reading.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass
from pathlib import Path

from distdev import rules

from ._index import RESOURCE_FOLDER, Index
from ._syntax import Binding, FileInfo, Function, Span, Use, utf16_to_index

__all__ = [
    "Location", "Edit", "Signature", "definition", "hover", "completions", "signature_help",
    "references", "rename", "prepare_rename", "typed_spelling",
]

_ATTR_BEFORE = re.compile(r"([A-Za-z_]\w*)\s*\.\s*(\w*)$")
_CALLEE_BEFORE = re.compile(r"([A-Za-z_]\w*)\s*\.\s*([A-Za-z_]\w*)\s*$")
_KEYWORD_ARG = re.compile(r"^\s*([A-Za-z_]\w*)\s*=(?!=)")


@dataclass(frozen=True)
class Location:
    """A place in a file."""

    path: Path
    span: Span


@dataclass(frozen=True)
class Edit:
    """Replace ``span`` of ``path`` with ``text``."""

    path: Path
    span: Span
    text: str


@dataclass(frozen=True)
class Signature:
    """What signature help shows for one call through a proxy."""

    label: str
    doc: str | None
    params: list[str]
    active: int


def _use_at(info: FileInfo, line: int, col: int) -> Use | None:
    for use in info.uses:
        if use.span.contains(line, col):
            return use
    return None


def _binding_at(info: FileInfo, line: int, col: int) -> Binding | None:
    for b in info.bindings.values():
        if b.span.contains(line, col) or b.literal_span.contains(line, col):
            return b
    for use in info.uses:
        if use.base_span.contains(line, col) and use.base in info.bindings:
            return info.bindings[use.base]
    return None


def _export_at(index: Index, info: FileInfo, line: int, col: int
               ) -> tuple[Path, str] | None:
    """The export under the cursor: a call site's ``proxy.name``, or the name of a ``def``."""
    use = _use_at(info, line, col)
    if use is not None:
        for target in index.targets_of(info, use):
            if use.attr in target.exports():
                return target.path, use.attr
        return None
    for name, fn in info.exports().items():
        if fn is not None and fn.span.contains(line, col):
            return info.path, name
    return None


def definition(index: Index, path: Path, line: int, col: int) -> list[Location]:
    """Where the name under the cursor is defined, across the membrane."""
    info = index.get(path)
    if info is None:
        return []
    use = _use_at(info, line, col)
    if use is not None:
        out = []
        for target in index.targets_of(info, use):
            fn = target.functions.get(use.attr)
            if target.path.parent == RESOURCE_FOLDER:
                continue  # a resource's methods are distdev's: no file of the workspace
            if fn is not None:
                out.append(Location(target.path, fn.span))
            elif use.attr in target.imports:
                out.append(Location(target.path, target.imports[use.attr][3]))
        return out
    binding = _binding_at(info, line, col)
    if binding is not None and binding.target is not None and binding.target.is_file():
        return [Location(binding.target, Span(0, 0, 0, 0))]
    return []


def _describe(fn: Function, target: FileInfo) -> str:
    text = f"```python\n{fn.signature()}\n```\n"
    if fn.doc:
        text += f"\n{fn.doc}\n"
    if target.path.parent == RESOURCE_FOLDER:
        return text + f"\nmethod of a `{target.path.stem}` resource (distdev.resources)"
    return text + f"\nexport of service `{target.path.name}` ({target.path})"


def hover(index: Index, path: Path, line: int, col: int) -> tuple[str, Span] | None:
    """Markdown for the export or proxy under the cursor, and the span it covers."""
    info = index.get(path)
    if info is None:
        return None
    use = _use_at(info, line, col)
    if use is not None:
        parts = [_describe(fn, t) for t in index.targets_of(info, use)
                 if (fn := t.exports().get(use.attr)) is not None]
        return ("\n\n---\n\n".join(parts), use.span) if parts else None
    binding = _binding_at(info, line, col)
    if binding is not None and binding.target is not None:
        target = index.get(binding.target)
        names = ", ".join(target.exports()) if target is not None else "(file not found)"
        return (f"proxy to service `{binding.target.name}` ({binding.target})\n\n"
                f"exports: {names or 'nothing'}", binding.span)
    for fn in info.functions.values():
        if fn.span.contains(line, col) and fn.name in info.exports():
            callers = len(index.uses_of(path, fn.name))
            return (_describe(fn, info) + f"\n\ncalled through proxies at {callers} "
                    f"site{'s' if callers != 1 else ''}", fn.span)
    return None


def _prefix(text: str, line: int, col: int) -> str:
    lines = text.split("\n")
    if not 0 <= line < len(lines):
        return ""
    return "\n".join(lines[:line] + [lines[line][: utf16_to_index(lines[line], col)]])


def completions(index: Index, path: Path, text: str, line: int, col: int
                ) -> list[tuple[str, Function | None, FileInfo]] | None:
    """Exports reachable after ``proxy.`` at the cursor; None when the cursor is not there."""
    info = index.get(path)
    lines = text.split("\n")
    if info is None or not 0 <= line < len(lines):
        return None
    match = _ATTR_BEFORE.search(lines[line][: utf16_to_index(lines[line], col)])
    if match is None:
        return None
    probe = Use(match.group(1), "", Span(line, col, line, col), Span(line, col, line, col),
                info.scope_at(line))
    targets = index.targets_of(info, probe)
    if not targets:
        return None
    out: list[tuple[str, Function | None, FileInfo]] = []
    for target in targets:
        out += [(n, f, target) for n, f in target.exports().items()
                if all(n != seen for seen, _, _ in out)]
    return out


def _open_call(before: str) -> tuple[str, str] | None:
    """The text before an unclosed ``(`` and the argument text after it."""
    depth = 0
    quote: str | None = None
    for i in range(len(before) - 1, -1, -1):
        ch = before[i]
        if quote:
            if ch == quote:
                quote = None
            continue
        if ch in "\"'":
            quote = ch
        elif ch in ")]}":
            depth += 1
        elif ch in "([{":
            if depth == 0:
                return (before[:i], before[i + 1:]) if ch == "(" else None
            depth -= 1
    return None


def _top_level_args(args: str) -> list[str]:
    out, depth, start = [], 0, 0
    for i, ch in enumerate(args):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            out.append(args[start:i])
            start = i + 1
    return out + [args[start:]]


def signature_help(index: Index, path: Path, text: str, line: int, col: int
                   ) -> Signature | None:
    """The signature of the export being called at the cursor, and the active parameter."""
    info = index.get(path)
    opened = _open_call(_prefix(text, line, col)[-4000:])
    if info is None or opened is None:
        return None
    match = _CALLEE_BEFORE.search(opened[0])
    if match is None:
        return None
    probe = Use(match.group(1), match.group(2), Span(line, col, line, col),
                Span(line, col, line, col), info.scope_at(line))
    for target in index.targets_of(info, probe):
        fn = target.exports().get(probe.attr)
        if fn is None:
            continue
        params = [p.render() for p in fn.params]
        args = _top_level_args(opened[1])
        active = len(args) - 1
        named = _KEYWORD_ARG.match(args[-1])
        if named is not None:
            active = next((i for i, p in enumerate(fn.params) if p.name == named.group(1)), -1)
        else:
            active = min(active, len(params) - 1)
        return Signature(fn.signature(), fn.doc, params, active)
    return None


def references(index: Index, path: Path, line: int, col: int, declaration: bool
               ) -> list[Location]:
    """Every call site of the export under the cursor, in every service, and its ``def``."""
    info = index.get(path)
    found = _export_at(index, info, line, col) if info is not None else None
    if found is None:
        return []
    target_path, name = found
    out = [Location(i.path, u.span) for i, u in index.uses_of(target_path, name)]
    target = index.get(target_path)
    fn = target.functions.get(name) if target is not None else None
    if declaration and fn is not None:
        out.insert(0, Location(target_path, fn.span))
    return out


def prepare_rename(index: Index, path: Path, line: int, col: int) -> Span | None:
    """The span of a renamable export name under the cursor."""
    info = index.get(path)
    if info is None or _export_at(index, info, line, col) is None:
        return None
    use = _use_at(info, line, col)
    if use is not None:
        return use.span
    return next(fn.span for fn in info.exports().values()
                if fn is not None and fn.span.contains(line, col))


def rename(index: Index, path: Path, line: int, col: int, new: str) -> list[Edit] | str:
    """Edits renaming the export under the cursor everywhere, or why it cannot be renamed."""
    if not new.isidentifier() or keyword.iskeyword(new):
        return f"{new!r} is not a Python identifier"
    info = index.get(path)
    found = _export_at(index, info, line, col) if info is not None else None
    if found is None:
        return "put the cursor on an export (its def, or a call through a proxy) to rename it"
    target_path, name = found
    target = index.get(target_path)
    if target is None or target.functions.get(name) is None:
        return f"{name!r} is not defined in {target_path.name}"
    if new in target.functions or new in target.variables or new in target.imports:
        return f"{target_path.name} already has a {new!r}"
    if not rules.is_public(new):
        return (f"renaming {name!r} to {new!r} would make it private to its service (a name "
                "starting with '_' is no export), and every call to it from another service "
                "would fail: choose a name without a leading '_'")
    edits = [Edit(target_path, target.functions[name].span, new)]
    edits += [Edit(i.path, u.span, new) for i, u in index.uses_of(target_path, name)]
    for listed, span in target.all_names or []:
        if listed == name:
            quote = target.lines[span.line][span.col] if span.col < len(target.lines[span.line]) \
                else '"'
            edits.append(Edit(target_path, span, f"{quote}{new}{quote}"))
    for used, span, scope in target.names:
        local = target.scopes.get(scope) if scope is not None else None
        if used == name and not (local and (used in local.params or used in local.locals)):
            edits.append(Edit(target_path, span, new))
    return sorted(set(edits), key=lambda e: (str(e.path), e.span.line, e.span.col))


def _relative_module(importer: Path, target: Path) -> tuple[str, str] | None:
    """``from <package> import <module>``, relative, for ``target`` seen from ``importer``."""
    common, up_count = importer.parent, 0
    while common != common.parent and common not in target.parents:
        common, up_count = common.parent, up_count + 1
    parts = target.relative_to(common).with_suffix("").parts
    up = "." * up_count
    if not parts or not all(p.isidentifier() for p in parts):
        return None
    return "." + up + ".".join(parts[:-1]), parts[-1]


def _import_of(importer: Path, target: Path, apps: list[Path]) -> tuple[str | None, str] | None:
    """(package, module) to write ``from package import module`` (``import module`` when the
    package is None) naming ``target`` from ``importer`` as type checkers resolve it.

    Relative inside a package (an ``__init__.py`` beside the importer). Otherwise — a service
    is a file, its folder usually no package — absolute from the application's folder: distdev
    runs services with that folder on ``sys.path``, and the background check names modules from
    it; a relative import there is one mypy cannot resolve ("no parent package")."""
    if (importer.parent / "__init__.py").is_file():
        return _relative_module(importer, target)
    for folder in apps or [importer.parent]:
        if not target.is_relative_to(folder):
            continue
        parts = target.relative_to(folder).with_suffix("").parts
        if parts and all(p.isidentifier() for p in parts):
            return (".".join(parts[:-1]) or None), parts[-1]
    return None


def typed_spelling(index: Index, path: Path, line: int) -> tuple[str, list[Edit]] | None:
    """Rewrite the ``import_service`` binding on ``line`` into the spelling checkers follow."""
    info = index.current(path)
    if info is None or info.error is not None:
        return None
    binding = next((b for b in info.bindings.values() if not b.typed and b.target is not None
                    and b.statement.line <= line <= b.statement.end_line), None)
    if binding is None or binding.target is None:
        return None
    module = _import_of(path, binding.target, [app.parent for app in index.apps_of(path)])
    if module is None:
        return None
    package, stem = module
    alias = f" as {binding.name}" if binding.name != stem else ""
    statement = (f"from {package} import {stem}{alias}" if package is not None
                 else f"import {stem}{alias}")
    ind = binding.indent
    lines = info.lines[binding.statement.line: binding.statement.end_line + 1]
    body = "\n".join([lines[0][len(ind):]] + ["    " + rest for rest in lines[1:]])
    text = (f"if TYPE_CHECKING:\n{ind}    {statement}\n"
            f"{ind}else:\n{ind}    {body}")
    whole = Span(binding.statement.line, len(ind), binding.statement.end_line, len(lines[-1]))
    edits = [Edit(path, whole, text)]
    if not info.has_type_checking:
        edits.insert(0, Edit(path, _import_point(info), "from typing import TYPE_CHECKING\n"))
    return f"Spell {binding.name} so type checkers follow it (TYPE_CHECKING import)", edits


def _import_point(info: FileInfo) -> Span:
    """Where a new import goes: after the last top-level import (or after ``__future__``)."""
    last = -1
    for _, (_, _, _, span) in info.imports.items():
        if span.line == span.end_line and not info.lines[span.line].startswith((" ", "\t")):
            last = max(last, span.end_line)
    line = last + 1 if last >= 0 else 0
    return Span(line, 0, line, 0)
