"""A mypy plugin that types ``x = import_service("./x.py")`` as a proxy to that file's exports.

Enable it with ``plugins = distdev.lsp.mypy_plugin`` in the mypy configuration. Then
``x.charge("ann", "1200")`` is checked against ``def charge(user: str, cents: int)`` in
``x.py``, and ``x._internal`` or ``x.missing`` is an error.

How: ``get_additional_deps`` makes mypy load every service a file imports with a string
literal path (resolved against the file's folder, as the runtime does); the function hook on
``import_service`` builds a class derived from ``ServiceProxy`` whose attributes are the
service's exports with their signatures, so a typed proxy can still be passed wherever a
``ServiceProxy`` is expected. The class is stored (hidden) in the calling module's symbol table
so mypy's incremental cache can find it again.

Exports and paths follow the rules the runtime applies (``distdev.rules``): the public
functions a top-level ``def`` defines, decorated or not, except ``@effect`` ones, or the names in
``__all__`` when the module has one. A path that is not a string literal, that cannot name a
service file, or whose file mypy cannot find keeps the plain ``ServiceProxy`` type.

Module names: a service file given to mypy as a source keeps the name mypy gave it; otherwise
it is named relative to the caller's package base (then ``mypy_path``, then the working
directory). Known limit: with folders lacking ``__init__.py``, passing mypy a file from such a
folder (``mypy app.py billing/ledger.py``) puts that folder on mypy's search path, and
``billing/billing.py`` then answers to both ``billing`` and ``billing.billing`` — mypy stops
with "Source file found twice". ``mypy app.py``, ``mypy .`` and ``--explicit-package-bases``
are fine.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable
from pathlib import Path

from mypy.errorcodes import ErrorCode
from mypy.nodes import (
    ARG_POS,
    GDEF,
    AssignmentStmt,
    Block,
    CallExpr,
    ClassDef,
    Decorator,
    Expression,
    FuncDef,
    IfStmt,
    MemberExpr,
    MypyFile,
    NameExpr,
    OverloadedFuncDef,
    Statement,
    StrExpr,
    SymbolTable,
    SymbolTableNode,
    TypeInfo,
    Var,
)
from mypy.options import Options
from mypy.plugin import AttributeContext, FunctionContext, Plugin
from mypy.types import (
    AnyType,
    CallableType,
    Instance,
    Overloaded,
    Type,
    TypeOfAny,
    get_proper_type,
)

from distdev import rules

from ._syntax import resolve_literal

__all__ = ["plugin", "DistdevPlugin", "SERVICE_EXPORT"]

SERVICE_EXPORT = ErrorCode(
    "service-export", "Check that a proxy is used only for its service's exports", "General")

# mypy names a function by where it is defined; the public spelling is kept for a stub that
# might declare it there.
_IMPORT_SERVICE = {rules.IMPORT_SERVICE_FULLNAME, "distdev.import_service"}
_PROXY = rules.SERVICE_PROXY_FULLNAME
_MARK = "__distdev_service_proxy__"  # metadata key on the synthesized classes
# As written (when mypy cannot resolve the decorator), and as mypy resolves it.
_EFFECT = rules.EFFECT_DECORATORS | {rules.EFFECT_FULLNAME}


def _literal_path(call: CallExpr) -> str | None:
    """The path argument of an ``import_service(...)`` call, when it is a string literal."""
    for index, (arg, kind, name) in enumerate(zip(call.args, call.arg_kinds, call.arg_names)):
        if name == "path" or (index == 0 and name is None and kind == ARG_POS):
            return arg.value if isinstance(arg, StrExpr) else None
    return None


def _is_import_service(callee: Expression) -> bool:
    if isinstance(callee, NameExpr):
        return callee.name == "import_service"
    if isinstance(callee, MemberExpr):
        return callee.name == "import_service"
    return False


def _service_calls(statements: list[Statement]) -> list[tuple[str, int]]:
    """``(path literal, line)`` of every top-level ``import_service`` assignment, including
    those under ``if``/``else`` (as in ``if TYPE_CHECKING: ... else: x = import_service(...)``)."""
    found: list[tuple[str, int]] = []
    for stmt in statements:
        if isinstance(stmt, AssignmentStmt) and isinstance(stmt.rvalue, CallExpr):
            call = stmt.rvalue
            if _is_import_service(call.callee):
                path = _literal_path(call)
                if path is not None:
                    found.append((path, stmt.line))
        elif isinstance(stmt, IfStmt):
            for block in [*stmt.body, stmt.else_body]:
                if isinstance(block, Block):
                    found.extend(_service_calls(block.body))
    return found


def _base_dir(file_path: str, module: str) -> Path:
    """The folder module names are relative to, given a file and its module name."""
    path = Path(file_path).resolve()
    depth = module.count(".") + (1 if path.name == "__init__.py" else 0)
    base = path.parent
    for _ in range(depth):
        base = base.parent
    return base


def _target(caller_path: str, literal: str) -> Path | None:
    """The service file ``literal`` names from the caller, joined as the runtime joins it, then
    resolved (mypy's trees are compared by resolved path); None if it can name none."""
    target = resolve_literal(Path(caller_path).absolute(), literal)
    return target.resolve() if target is not None else None


def _build_sources(file: MypyFile) -> dict[Path, str]:
    """Path -> module name of the files given to mypy on the command line.

    A source file keeps the name mypy gave it (``mypy .`` calls ``billing/billing.py``
    ``billing`` when ``billing/`` has no ``__init__.py``): naming it differently in a dependency
    would make mypy load one file twice. The plugin API does not pass the build's sources, and
    mypy is compiled (no Python frames to walk), so they are found through the ``State`` that
    holds ``file`` (a few milliseconds, only for files that call ``import_service``).
    """
    for owner in gc.get_referrers(file):
        source_set = getattr(getattr(owner, "manager", None), "source_set", None)
        modules = getattr(source_set, "source_modules", None)
        if isinstance(modules, dict):
            return {Path(path).resolve(): module for module, path in modules.items() if path}
    return {}


def _module_for(caller_path: str, caller_module: str, literal: str, options: Options,
                sources: dict[Path, str]) -> str | None:
    """The module name mypy knows ``literal`` (relative to the caller's file) by."""
    target = _target(caller_path, literal)
    if target is None:
        return None
    if target in sources:
        return sources[target]
    roots = [_base_dir(caller_path, caller_module)]
    roots += [Path(p).resolve() for p in options.mypy_path]
    roots.append(Path(os.getcwd()).resolve())
    for root in roots:
        try:
            rel = target.relative_to(root)
        except ValueError:
            continue
        parts = list(rel.with_suffix("").parts)
        if parts and parts[-1] == "__init__":
            parts.pop()
        if parts and all(p.isidentifier() for p in parts):
            return ".".join(parts)
    return None


class DistdevPlugin(Plugin):
    """Types ``import_service`` calls with string literal paths."""

    def __init__(self, options: Options) -> None:
        super().__init__(options)
        self._by_path: dict[Path, MypyFile] = {}
        self._seen = -1

    def get_additional_deps(self, file: MypyFile) -> list[tuple[int, str, int]]:
        deps: list[tuple[int, str, int]] = []
        calls = _service_calls(file.defs) if file.path else []
        if not calls:
            return deps
        sources = _build_sources(file)
        for literal, line in calls:
            module = _module_for(file.path, file.fullname, literal, self.options, sources)
            if module is not None and module != file.fullname:
                deps.append((10, module, line))
        return deps

    def get_function_hook(self, fullname: str) -> Callable[[FunctionContext], Type] | None:
        if fullname in _IMPORT_SERVICE:
            return self._import_service
        return None

    def get_attribute_hook(self, fullname: str) -> Callable[[AttributeContext], Type] | None:
        # Names the proxy class does not define reach ServiceProxy.__getattr__.
        if fullname.startswith(_PROXY + "."):
            return self._missing_export
        return None

    # -- hooks ---------------------------------------------------------------------------------

    def _import_service(self, ctx: FunctionContext) -> Type:
        default = ctx.default_return_type
        call = ctx.context
        if not isinstance(call, CallExpr):
            return default
        literal = _literal_path(call)
        checker = ctx.api
        caller_path: str = getattr(checker, "path", "")
        tree = getattr(checker, "tree", None)
        modules: dict[str, MypyFile] = getattr(checker, "modules", {})
        path = _target(caller_path, literal) if literal is not None and caller_path else None
        if path is None or not isinstance(tree, MypyFile):
            return default
        target = self._loaded(modules, path)
        proxy = get_proper_type(default)
        if target is None or not isinstance(proxy, Instance) or proxy.type.fullname != _PROXY:
            return default
        return Instance(self._proxy_class(tree, target, proxy), [])

    def _missing_export(self, ctx: AttributeContext) -> Type:
        owner = get_proper_type(ctx.type)
        if isinstance(owner, Instance) and _MARK in owner.type.metadata:
            name = ctx.context.name if isinstance(ctx.context, MemberExpr) else "?"
            service = owner.type.metadata[_MARK]["module"]
            ctx.api.fail(f'Service "{service}" has no export "{name}"', ctx.context,
                         code=SERVICE_EXPORT)
            return AnyType(TypeOfAny.from_error)
        return ctx.default_attr_type

    def _loaded(self, modules: dict[str, MypyFile], path: Path) -> MypyFile | None:
        """The module mypy loaded from ``path``, whatever name it gave it."""
        if len(modules) != self._seen:
            self._by_path = {}
            for tree in modules.values():
                if tree.path:
                    self._by_path[Path(tree.path).resolve()] = tree
            self._seen = len(modules)
        return self._by_path.get(path)

    # -- the proxy class -----------------------------------------------------------------------

    def _proxy_class(self, caller: MypyFile, target: MypyFile, proxy: Instance) -> TypeInfo:
        """The class of proxies to ``target``, stored hidden in ``caller``'s symbol table."""
        name = "__distdev_proxy__" + target.fullname.replace(".", "__")
        existing = caller.names.get(name)
        if existing is not None and isinstance(existing.node, TypeInfo):
            return existing.node
        classdef = ClassDef(name, Block([]))
        classdef.fullname = f"{caller.fullname}.{name}"
        info = TypeInfo(SymbolTable(), classdef, caller.fullname)
        classdef.info = info
        info.bases = [proxy]
        info.mro = [info, *proxy.type.mro]
        info.metadata[_MARK] = {"module": target.fullname}
        for export, export_type in _exports(target).items():
            var = Var(export, export_type)
            var.info = info
            var._fullname = f"{classdef.fullname}.{export}"
            var.is_ready = True
            var.is_initialized_in_class = True  # a class attribute, called without self
            var.is_staticmethod = True
            var.is_classvar = True
            info.names[export] = SymbolTableNode(GDEF, var, plugin_generated=True)
        caller.names[name] = SymbolTableNode(GDEF, info, plugin_generated=True)
        return info


_Function = Decorator | FuncDef | OverloadedFuncDef


def _exports(module: MypyFile) -> dict[str, Type]:
    """Export name -> its type, by the rule the runtime applies (``rules.export_names``)."""
    functions = {name: node.node for name, node in module.names.items()
                 if isinstance(node.node, _Function)}
    candidates = [rules.ExportCandidate(name, _fullname(defn) == f"{module.fullname}.{name}",
                                        _is_effect(defn))
                  for name, defn in functions.items()]
    return {name: _export_type(functions[name])
            for name in rules.export_names(candidates, _listed(module))}


def _listed(module: MypyFile) -> list[str] | None:
    """The names ``__all__`` lists, or None without one (mypy marks exactly those public)."""
    if "__all__" not in module.names:
        return None
    return [name for name, node in module.names.items() if node.module_public]


def _fullname(defn: _Function) -> str:
    """Where the function is defined: another module's for an imported one."""
    return defn.func.fullname if isinstance(defn, Decorator) else defn.fullname


def _is_effect(defn: _Function) -> bool:
    return isinstance(defn, Decorator) and any(
        _decorator_name(d) in _EFFECT for d in defn.original_decorators)


def _export_type(defn: _Function) -> Type:
    """What a call through a proxy is checked against. A decorator typed to return a callable
    (as ``functools.wraps``-style ones are, with a ParamSpec) gives the decorated type; one that
    returns an object would check nothing (``functools.lru_cache``'s takes ``*Hashable``), so the
    ``def``'s own signature, which the call reaches through the wrapper, is used then."""
    typ: Type | None
    if not isinstance(defn, Decorator):
        typ = defn.type
    elif _is_callable(defn.var.type):
        typ = defn.var.type
    else:
        typ = defn.func.type or defn.var.type
    return typ if typ is not None else AnyType(TypeOfAny.unannotated)


def _is_callable(typ: Type | None) -> bool:
    return typ is not None and isinstance(get_proper_type(typ), (CallableType, Overloaded))


def _decorator_name(expr: Expression) -> str:
    if isinstance(expr, CallExpr):
        expr = expr.callee
    if isinstance(expr, (NameExpr, MemberExpr)):
        return expr.fullname or expr.name
    return ""


def plugin(version: str) -> type[Plugin]:
    """mypy's entry point."""
    return DistdevPlugin
