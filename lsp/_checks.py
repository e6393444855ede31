"""Diagnostics no ordinary type checker gives: the membrane's rules, checked statically.

Each check returns ``Problem``s; the server turns them into LSP diagnostics. What is checked:
service files that do not exist or lie outside the application folder, sibling services whose
ids clash, names a service does not export, arity and keywords of calls through proxies, literal
arguments against the callee's annotations, exported signatures whose types cannot cross a
membrane, and cycles of services importing each other.

The service-path and id checks apply the rules ``distdev build`` applies (``distdev.rules``,
as ``Service._child`` in the runtime does), with the same advice, so an editor shows the build's
error before the build runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from distdev import rules

from ._index import RESOURCE_FOLDER, Index
from ._syntax import Arg, Binding, FileInfo, Function, Span, Use
from ._types import accepts, membrane_problem

__all__ = ["Problem", "check_file"]


@dataclass(frozen=True)
class Problem:
    """One diagnostic, protocol-free."""

    span: Span
    message: str
    code: str
    severity: str = "error"  # "error", "warning", "information"


def check_file(index: Index, path: Path) -> list[Problem]:
    """Every problem in ``path`` as it reads now."""
    current = index.current(path)
    info = index.get(path)
    if current is None or info is None:
        return []
    problems: list[Problem] = []
    if current.error is not None:
        message, span = current.error
        problems.append(Problem(span, message, "syntax-error"))
    problems += _bindings(index, info)
    problems += _sibling_ids(info)
    problems += _cycles(index, info)
    for use in info.uses:
        problems += _use(index, info, use)
    problems += _exports(index, info)
    return problems


def _bindings(index: Index, info: FileInfo) -> list[Problem]:
    out = []
    apps = index.apps_of(info.path)
    for b in info.spawns:
        outside = _outside(info, b, apps)
        if b.target is None:
            out.append(Problem(b.literal_span, f"import_service({b.literal!r}) needs a relative "
                               "path to a .py file, like './billing.py'", "bad-service-path"))
        elif outside is not None:
            out.append(outside)
        elif not b.target.is_file():
            out.append(Problem(
                b.literal_span,
                f"no service file {b.target}: the path {b.literal!r} is relative to this file's "
                f"folder ({info.path.parent}); create the file or fix the path",
                "missing-service"))
    return out


def _outside(info: FileInfo, b: Binding, apps: list[Path]) -> Problem | None:
    """The build refuses a service file outside the root service's folder (before it looks
    for the file), for every application whose tree holds this service."""
    if b.target is None:
        return None
    for root in apps:
        if _leaves_folder(info.path, b.literal, root.parent):
            return Problem(
                b.literal_span,
                f"import_service({b.literal!r}) names {b.target}, which is outside the "
                f"application folder {root.parent} (the folder of the root service "
                f"{root.name}); `distdev build {root.name}` stops with ServiceLoadError: keep "
                "every service file under the root service's folder (move the file in, or "
                "build from a root higher up)", "service-outside-app")
    return None


def _leaves_folder(importer: Path, literal: str, folder: Path) -> bool:
    """Whether ``import_service(literal)`` in ``importer`` leaves the application ``folder``.
    An importer outside the folder is not judged: the build stopped at the import that
    reached it, and that import is reported."""
    if not importer.is_relative_to(folder):
        return False
    try:
        rules.resolve_service_path(importer.relative_to(folder).as_posix(), literal)
    except rules.ServicePathError as bad:
        return bad.kind == "outside"
    return False


def _sibling_ids(info: FileInfo) -> list[Problem]:
    """Two children of one service with the same id (the file's stem, or ``name=``): the build
    creates the first and stops at the second with ServiceIdClashError."""
    out: list[Problem] = []
    earlier: dict[str, list[Binding]] = {}
    for b in info.spawns:
        local = b.local_name
        if local is None:
            continue
        problem = rules.service_name_problem(local)
        if problem is not None:
            out.append(Problem(b.literal_span, f"{problem}; pass name= to "
                               f"import_service({b.literal!r})", "bad-service-name"))
            continue
        first = next((e for e in earlier.get(local, []) if not e.exclusive_with(b)), None)
        if first is not None:
            out.append(Problem(
                b.literal_span,
                f"a sibling service is already named {local!r} (from {first.literal!r} on line "
                f"{first.statement.line + 1}); ids must be unique among siblings, so "
                "`distdev build` stops here with ServiceIdClashError: pass name= to give this "
                f"one another id, for example import_service({b.literal!r}, "
                f"name={local + '_2'!r})", "service-id-clash"))
        earlier.setdefault(local, []).append(b)
    return out


def _cycles(index: Index, info: FileInfo) -> list[Problem]:
    out = []
    for cycle in index.cycles():
        if info.path not in cycle[:-1]:
            continue
        nxt = cycle[cycle.index(info.path) + 1]
        names = [p.name for p in cycle]
        for b in info.bindings.values():
            if b.target == nxt:
                out.append(Problem(b.literal_span, rules.service_cycle_problem(names),
                                   "service-cycle"))
    return out


def _use(index: Index, info: FileInfo, use: Use) -> list[Problem]:
    out: list[Problem] = []
    for target in index.targets_of(info, use):
        exports = target.exports()
        if use.attr not in exports:
            out.append(Problem(use.span, _not_exported(target, use.attr), "not-exported"))
            continue
        fn = exports[use.attr]
        if use.call is not None and fn is not None:
            out += _call(fn, use, target)
    return out


def _not_exported(target: FileInfo, name: str) -> str:
    service = target.path.name
    listed = ", ".join(target.exports()) or "nothing"
    if target.path.parent == RESOURCE_FOLDER:
        return (f"a {target.path.stem} resource has no method {name!r}; its methods: {listed} "
                "(docs/resources.md)")
    tail = f"; a proxy reaches only {service}'s exports ({listed})"
    if not rules.is_public(name):
        why = f"{name!r} is private to {service}"
    elif name in target.functions and target.all_names is not None:
        why = f"{name!r} is not in {service}'s __all__"
    elif name in target.functions:
        why = f"{name!r} is an @effect of {service}, not an export"
    elif name in target.imports:
        why = f"{name!r} is imported by {service}, not defined there"
    elif name in target.classes:
        why = f"{name!r} is a class in {service}; only functions are exports"
    elif name in target.variables:
        why = f"{name!r} is a variable of {service}; only functions are exports"
    else:
        why = f"{service} has no {name!r}"
    return why + tail


def _call(fn: Function, use: Use, target: FileInfo) -> list[Problem]:
    assert use.call is not None and use.call_span is not None
    out: list[Problem] = []
    where = f"{target.path.name}'s {fn.name}()"
    positional = [p for p in fn.params if p.kind in ("posonly", "normal")]
    varargs = any(p.kind == "varargs" for p in fn.params)
    varkw = any(p.kind == "varkw" for p in fn.params)
    bound: dict[str, Arg] = {}
    plain = [a for a in use.call if a.keyword is None]
    for i, arg in enumerate(plain):
        if i < len(positional):
            bound[positional[i].name] = arg
        elif not varargs:
            out.append(Problem(arg.span, f"{where} takes {len(positional)} positional "
                               f"argument{'s' if len(positional) != 1 else ''} but "
                               f"{len(plain)} were given", "arity"))
            break
    by_name = {p.name: p for p in fn.params}
    for arg in use.call:
        if arg.keyword is None:
            continue
        param = by_name.get(arg.keyword)
        if param is None or param.kind in ("varargs", "varkw"):
            if not varkw:
                out.append(Problem(arg.span, f"{where} has no parameter {arg.keyword!r} "
                                   f"(it takes {', '.join(by_name) or 'none'})", "keyword"))
        elif param.kind == "posonly":
            out.append(Problem(arg.span, f"{arg.keyword!r} is positional-only in {where}",
                               "keyword"))
        elif param.name in bound:
            out.append(Problem(arg.span, f"{where} got two values for {param.name!r}", "keyword"))
        else:
            bound[param.name] = arg
    if not use.star:
        missing = [p.name for p in fn.params if p.kind in ("posonly", "normal", "kwonly")
                   and p.default is None and p.name not in bound]
        if missing:
            out.append(Problem(use.call_span, f"{where} is missing "
                               f"{', '.join(repr(m) for m in missing)}", "arity"))
    for name, arg in bound.items():
        out += _argument_type(by_name[name].annotation, arg, name, where)
    return out


def _argument_type(annotation: str | None, arg: Arg, name: str, where: str) -> list[Problem]:
    if arg.kind in ("lambda", "generator"):
        return [Problem(arg.span, f"a {arg.kind} cannot cross a membrane (argument {name!r} of "
                        f"{where}); pass a value, or a proxy to a service that does the work",
                        "membrane-type")]
    if arg.kind is None or annotation is None:
        return []
    if accepts(annotation, arg.kind) is False:
        return [Problem(arg.span, f"argument {name!r} of {where} is {annotation}, not "
                        f"{arg.kind}", "argument-type")]
    return []


def _exports(index: Index, info: FileInfo) -> list[Problem]:
    out: list[Problem] = []
    for name, span in info.all_names or []:
        if name not in info.functions and name not in info.imports:
            what = "a class" if name in info.classes else (
                "a variable" if name in info.variables else "not defined")
            out.append(Problem(span, f"__all__ lists {name!r}, which is {what}; exports are "
                               "the functions other services may call", "bad-export"))
    for fn in info.exports().values():
        if fn is None:
            continue
        for p in fn.params:
            if p.default_is_lambda:
                out.append(Problem(p.span, f"export {fn.name}() has a lambda default for "
                                   f"{p.name!r}; a function cannot cross a membrane",
                                   "membrane-type"))
            elif p.annotation is not None:
                bad = membrane_problem(info, p.annotation)
                if bad:
                    out.append(Problem(p.span, f"parameter {p.name!r} of export {fn.name}() "
                                       f"is {p.annotation}: {bad}", "membrane-type"))
        if fn.returns is not None and fn.returns_span is not None:
            bad = membrane_problem(info, fn.returns)
            if bad:
                out.append(Problem(fn.returns_span, f"export {fn.name}() returns {fn.returns}: "
                                   f"{bad}", "membrane-type"))
    return out
