"""What one service file says, read with ``ast`` alone: its exports, its ``import_service``
bindings, its uses of proxies, the proxies it receives, its hosting.

Nothing here imports a protocol type. Positions are 0-based lines and UTF-16 columns (what LSP
counts), converted once here from ``ast``'s UTF-8 byte offsets, so no other layer converts.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

from distdev import rules

__all__ = [
    "Span", "Param", "Function", "Binding", "Arg", "Use", "Host", "FileInfo", "parse_file",
    "utf16_to_index", "literal_kind", "resolve_literal",
]


@dataclass(frozen=True)
class Span:
    """A range: 0-based lines, UTF-16 columns, end exclusive."""

    line: int
    col: int
    end_line: int
    end_col: int

    def contains(self, line: int, col: int) -> bool:
        """Whether ``(line, col)`` lies inside, both ends included (a cursor after a name)."""
        return (self.line, self.col) <= (line, col) <= (self.end_line, self.end_col)


@dataclass(frozen=True)
class Param:
    """One parameter of a function, its annotation and default as source text."""

    name: str
    kind: str  # "posonly", "normal", "varargs", "kwonly", "varkw"
    annotation: str | None
    default: str | None
    span: Span
    default_is_lambda: bool = False

    def render(self) -> str:
        """The parameter as it reads in a signature."""
        star = {"varargs": "*", "varkw": "**"}.get(self.kind, "")
        text = star + self.name
        if self.annotation is not None:
            text += f": {self.annotation}"
        if self.default is not None:
            text += " = " if self.annotation is not None else "="
            text += self.default
        return text


@dataclass(frozen=True)
class Function:
    """A top-level ``def``: the shape an export has."""

    name: str
    params: tuple[Param, ...]
    returns: str | None
    doc: str | None
    span: Span  # the name after ``def``
    body: Span  # the whole definition
    is_async: bool
    decorators: tuple[str, ...]
    returns_span: Span | None = None

    def signature(self) -> str:
        """``def name(params) -> returns`` with ``/`` and ``*`` markers where needed."""
        parts: list[str] = []
        for i, p in enumerate(self.params):
            if p.kind == "kwonly" and (i == 0 or self.params[i - 1].kind not in ("kwonly", "varargs")):
                parts.append("*")
            parts.append(p.render())
            if p.kind == "posonly" and (i + 1 == len(self.params) or self.params[i + 1].kind != "posonly"):
                parts.append("/")
        head = ("async def " if self.is_async else "def ") + f"{self.name}({', '.join(parts)})"
        return head + (f" -> {self.returns}" if self.returns is not None else "")

    @property
    def is_effect(self) -> bool:
        """Decorated with ``@effect``: the service's own IO, not an export."""
        return not rules.EFFECT_DECORATORS.isdisjoint(self.decorators)


@dataclass(frozen=True)
class Binding:
    """``name = import_service("./path.py", name=...)`` at module level."""

    name: str
    literal: str
    target: Path | None  # None when the literal cannot name a file (absolute, not .py, ...)
    service_name: str | None
    span: Span  # the assigned name
    literal_span: Span
    statement: Span
    typed: bool  # already spelled ``if TYPE_CHECKING: from . import x / else: x = ...``
    indent: str = ""
    # The arms of top-level ``if`` statements this call sits in, as (statement number, arm
    # number): two calls in different arms of one ``if`` never both run.
    branch: tuple[tuple[int, int], ...] = ()

    @property
    def local_name(self) -> str | None:
        """The last part of the id the runtime gives this child: ``name=``, else the file's stem;
        None when the literal names no file (the runtime creates no child)."""
        if self.target is None:
            return None
        if self.service_name is not None:
            return self.service_name
        return rules.default_service_name(self.target.name)

    def exclusive_with(self, other: Binding) -> bool:
        """Whether at most one of the two calls runs (they sit in different arms of one ``if``)."""
        arms = dict(self.branch)
        return any(stmt in arms and arms[stmt] != arm for stmt, arm in other.branch)


@dataclass(frozen=True)
class Arg:
    """One argument at a call site: its literal kind if obvious, the name if a plain name."""

    span: Span
    kind: str | None  # "int", "str", ..., "lambda"; None when not a literal
    name: str | None  # ``foo`` when the argument is the bare name ``foo``
    keyword: str | None = None


@dataclass(frozen=True)
class Use:
    """``base.attr`` where ``base`` is a bare name: possibly a proxy and one of its exports."""

    base: str
    attr: str
    span: Span  # the attribute name
    base_span: Span
    scope: str | None  # the enclosing top-level function, or None at module level
    call: tuple[Arg, ...] | None = None  # the arguments when ``base.attr(...)`` is called
    call_span: Span | None = None
    star: bool = False  # ``*args`` or ``**kwargs`` at the call: arity unknown


@dataclass(frozen=True)
class Host:
    """``host.process(...)`` at module level."""

    kind: str
    http: int | None
    span: Span
    interleave: bool = False


@dataclass
class Scope:
    """Names a top-level function binds itself: parameters and plain locals."""

    params: tuple[str, ...]
    locals: set[str]
    globals: set[str]
    span: Span


@dataclass
class FileInfo:
    """Everything the index knows about one file."""

    path: Path
    text: str
    error: tuple[str, Span] | None = None
    functions: dict[str, Function] = field(default_factory=dict)
    classes: dict[str, ast.ClassDef] = field(default_factory=dict)
    imports: dict[str, tuple[str, str | None, int, Span]] = field(default_factory=dict)
    variables: set[str] = field(default_factory=set)
    all_names: list[tuple[str, Span]] | None = None
    bindings: dict[str, Binding] = field(default_factory=dict)
    spawns: list[Binding] = field(default_factory=list)  # every top-level call, in source order
    uses: list[Use] = field(default_factory=list)
    names: list[tuple[str, Span, str | None]] = field(default_factory=list)
    injected: dict[str, tuple[str, str]] = field(default_factory=dict)  # global -> (func, param)
    scopes: dict[str, Scope] = field(default_factory=dict)
    hosts: list[Host] = field(default_factory=list)
    has_type_checking: bool = False
    resources: dict[str, tuple[str, Span]] = field(default_factory=dict)
    """``name = resources.<kind>("...")`` at module level: name -> (kind, the name's span)."""
    resource_names: dict[str, str] = field(default_factory=dict)
    """The same variables -> the resource's name (its literal first argument), when literal."""

    @property
    def lines(self) -> list[str]:
        return self.text.split("\n")

    def exports(self) -> dict[str, Function | None]:
        """Export name -> its ``def`` (None for a callable listed in ``__all__`` but imported),
        by the rule the runtime applies (``distdev.rules.export_names``)."""
        listed = [name for name, _ in self.all_names] if self.all_names is not None else None
        return {name: self.functions.get(name)
                for name in rules.export_names(self._export_candidates(), listed)}

    def _export_candidates(self) -> list[rules.ExportCandidate]:
        """The top-level names that may be functions: every ``def`` (decorated or not), then
        the imported names, which only ``__all__`` can make exports."""
        defined = [rules.ExportCandidate(name, True, fn.is_effect)
                   for name, fn in self.functions.items()]
        imported = [rules.ExportCandidate(name, False)
                    for name in self.imports if name not in self.functions]
        return defined + imported

    def scope_at(self, line: int) -> str | None:
        """The top-level function whose body holds ``line``."""
        for name, scope in self.scopes.items():
            if scope.span.line <= line <= scope.span.end_line:
                return name
        return None


def utf16_to_index(line: str, col: int) -> int:
    """A UTF-16 column on ``line`` as an index into the ``str``."""
    if line.isascii():
        return min(col, len(line))
    units = 0
    for i, ch in enumerate(line):
        if units >= col:
            return i
        units += 2 if ord(ch) > 0xFFFF else 1
    return len(line)


class _Spans:
    def __init__(self, lines: list[str]) -> None:
        self._lines = lines

    def col(self, line: int, byte_col: int) -> int:
        text = self._lines[line] if 0 <= line < len(self._lines) else ""
        if text.isascii():
            return byte_col
        prefix = text.encode("utf-8")[:byte_col].decode("utf-8", "replace")
        return len(prefix.encode("utf-16-le")) // 2

    def of(self, node: ast.AST) -> Span:
        line = node.lineno - 1  # type: ignore[attr-defined]
        end = (node.end_lineno or node.lineno) - 1  # type: ignore[attr-defined]
        return Span(line, self.col(line, node.col_offset),  # type: ignore[attr-defined]
                    end, self.col(end, node.end_col_offset or 0))  # type: ignore[attr-defined]

    def name_after(self, node: ast.AST, keyword: str, name: str) -> Span:
        """The span of ``name`` in ``def name``/``class name`` (ast gives the whole statement)."""
        line = node.lineno - 1  # type: ignore[attr-defined]
        text = self._lines[line] if line < len(self._lines) else ""
        start = text.find(keyword)
        idx = text.find(name, start + len(keyword) if start >= 0 else 0)
        if idx < 0:
            return self.of(node)
        col = len(text[:idx].encode("utf-16-le")) // 2
        return Span(line, col, line, col + len(name.encode("utf-16-le")) // 2)

    def attr(self, node: ast.Attribute) -> Span:
        """The span of the attribute name in ``base.attr``."""
        whole = self.of(node)
        width = len(node.attr.encode("utf-16-le")) // 2
        return Span(whole.end_line, whole.end_col - width, whole.end_line, whole.end_col)


def literal_kind(node: ast.expr) -> str | None:
    """The builtin type an argument obviously has, or None."""
    if isinstance(node, ast.Constant):
        v = node.value
        if v is None:
            return "None"
        if isinstance(v, (bool, int, float, str, bytes)):
            return type(v).__name__
        return None
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        inner = literal_kind(node.operand)
        return inner if inner in ("int", "float") else None
    kinds: dict[type, str] = {
        ast.List: "list", ast.ListComp: "list", ast.Dict: "dict", ast.DictComp: "dict",
        ast.Tuple: "tuple", ast.Set: "set", ast.SetComp: "set", ast.JoinedStr: "str",
        ast.Lambda: "lambda", ast.GeneratorExp: "generator",
    }
    return kinds.get(type(node))


def resource_kind(node: ast.expr) -> str | None:
    """``sql`` for ``resources.sql(...)`` (or ``distdev.resources.sql(...)``), else None."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
        return None
    owner = node.func.value
    if (isinstance(owner, ast.Name) and owner.id == "resources") or (
            isinstance(owner, ast.Attribute) and owner.attr == "resources"):
        return node.func.attr
    return None


def _is_import_service(node: ast.expr) -> bool:
    return isinstance(node, ast.Call) and (
        (isinstance(node.func, ast.Name) and node.func.id == "import_service")
        or (isinstance(node.func, ast.Attribute) and node.func.attr == "import_service")
    )


def _path_argument(call: ast.Call) -> tuple[str, ast.expr] | None:
    """The string literal an ``import_service`` call passes as its path (first, or ``path=``),
    and its node."""
    node = call.args[0] if call.args else next(
        (kw.value for kw in call.keywords if kw.arg == "path"), None)
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value, node
    return None


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def resolve_literal(path: Path, literal: str) -> Path | None:
    """The file ``import_service(literal)`` names from ``path``, by the runtime's rule
    (``distdev.rules.resolve_service_path``); None when the literal cannot name a service file.

    The rule is applied from the file system's root: which application folder holds ``path``
    is not known here, so leaving that folder is checked per application (``_checks``)."""
    try:
        rel = rules.resolve_service_path(path.relative_to(path.anchor).as_posix(), literal)
    except rules.ServicePathError:
        return None
    return Path(path.anchor, rel)


class _Reader:
    """One pass over a module's top level; function bodies are walked for proxy uses."""

    def __init__(self, info: FileInfo, tree: ast.Module) -> None:
        self.info = info
        self.spans = _Spans(info.lines)
        self.tree = tree
        self._branch: tuple[tuple[int, int], ...] = ()
        self._statements = 0

    def read(self) -> None:
        for stmt in self.tree.body:
            self._statement(stmt, typed=False)
        for stmt in self.tree.body:
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self._walk_uses(stmt, stmt.name)
            else:
                self._walk_uses(stmt, None)

    # -- top level ---------------------------------------------------------------------------

    def _statement(self, stmt: ast.stmt, typed: bool) -> None:
        info = self.info
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            info.functions[stmt.name] = self._function(stmt)
            info.variables.discard(stmt.name)
        elif isinstance(stmt, ast.ClassDef):
            info.classes[stmt.name] = stmt
        elif isinstance(stmt, (ast.Import, ast.ImportFrom)):
            self._import(stmt)
        elif isinstance(stmt, ast.If) and _is_type_checking(stmt.test):
            info.has_type_checking = True
            for inner in stmt.orelse:
                self._statement(inner, typed=True)
            for inner in stmt.body:
                if isinstance(inner, (ast.Import, ast.ImportFrom)):
                    continue  # the type-only import names the service; the else branch binds it
                self._statement(inner, typed)
        elif isinstance(stmt, (ast.Assign, ast.AnnAssign)):
            self._assign(stmt, typed)
        elif isinstance(stmt, ast.Expr) and _is_import_service(stmt.value):
            self._binding("", None, stmt.value, stmt, typed)  # a child nobody names
        elif isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
            self._host(stmt.value)
        elif isinstance(stmt, ast.If):
            self._statements += 1
            number, outer = self._statements, self._branch
            for arm, body in enumerate([stmt.body, stmt.orelse]):
                self._branch = (*outer, (number, arm))
                for inner in body:
                    self._statement(inner, typed)
            self._branch = outer
        elif isinstance(stmt, ast.Try):
            # Not exclusive: a handler may run after part of the body already ran.
            for inner in [*stmt.body, *stmt.orelse]:
                self._statement(inner, typed)

    def _import(self, stmt: ast.Import | ast.ImportFrom) -> None:
        for alias in stmt.names:
            if alias.name == "TYPE_CHECKING":
                self.info.has_type_checking = True
            local = alias.asname or alias.name.partition(".")[0]
            entry: tuple[str, str | None, int, Span]
            if isinstance(stmt, ast.ImportFrom):
                entry = (stmt.module or "", alias.name, stmt.level, self.spans.of(stmt))
            else:
                entry = (alias.name, None, 0, self.spans.of(stmt))
            self.info.imports[local] = entry

    def _assign(self, stmt: ast.Assign | ast.AnnAssign, typed: bool) -> None:
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
        value = stmt.value
        for target in targets:
            for node in ast.walk(target):
                if isinstance(node, ast.Name):
                    self.info.variables.add(node.id)
        if len(targets) != 1 or not isinstance(targets[0], ast.Name):
            return
        name = targets[0].id
        if name == "__all__" and isinstance(value, (ast.List, ast.Tuple)):
            self.info.all_names = [
                (e.value, self.spans.of(e)) for e in value.elts
                if isinstance(e, ast.Constant) and isinstance(e.value, str)
            ]
        elif value is not None and _is_import_service(value):
            self._binding(name, targets[0], value, stmt, typed)
        elif value is not None and (kind := resource_kind(value)) is not None:
            self.info.resources[name] = (kind, self.spans.of(targets[0]))
            assert isinstance(value, ast.Call)
            first = value.args[0] if value.args else None
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                self.info.resource_names[name] = first.value

    def _binding(self, name: str, target: ast.Name | None, call: ast.expr, stmt: ast.stmt,
                 typed: bool) -> None:
        assert isinstance(call, ast.Call)
        argument = _path_argument(call)
        if argument is None:
            return
        literal, literal_node = argument
        service_name = None
        for kw in call.keywords:
            if kw.arg == "name" and isinstance(kw.value, ast.Constant) \
                    and isinstance(kw.value.value, str):
                service_name = kw.value.value
        line = self.info.lines[stmt.lineno - 1]
        binding = Binding(
            name=name, literal=literal, target=resolve_literal(self.info.path, literal),
            service_name=service_name, span=self.spans.of(target if target is not None else call),
            literal_span=self.spans.of(literal_node), statement=self.spans.of(stmt), typed=typed,
            indent=line[: len(line) - len(line.lstrip())], branch=self._branch,
        )
        self.info.spawns.append(binding)
        if target is not None:
            self.info.bindings[name] = binding

    def _host(self, call: ast.Call) -> None:
        func = call.func
        if not (isinstance(func, ast.Attribute) and func.attr == "process"
                and isinstance(func.value, ast.Name) and func.value.id == "host"):
            return
        http = None
        interleave = False
        for kw in call.keywords:
            if not isinstance(kw.value, ast.Constant):
                continue
            if kw.arg == "http" and isinstance(kw.value.value, int):
                http = kw.value.value
            elif kw.arg == "interleave" and isinstance(kw.value.value, bool):
                interleave = kw.value.value
        self.info.hosts.append(Host("process", http, self.spans.of(call), interleave))

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> Function:
        a = node.args
        params: list[Param] = []
        positional = [*a.posonlyargs, *a.args]
        defaults: list[ast.expr | None] = [None] * (len(positional) - len(a.defaults))
        defaults += list(a.defaults)
        for i, arg in enumerate(positional):
            kind = "posonly" if i < len(a.posonlyargs) else "normal"
            params.append(self._param(arg, kind, defaults[i]))
        if a.vararg:
            params.append(self._param(a.vararg, "varargs", None))
        for arg, default in zip(a.kwonlyargs, a.kw_defaults):
            params.append(self._param(arg, "kwonly", default))
        if a.kwarg:
            params.append(self._param(a.kwarg, "varkw", None))
        keyword = "async def" if isinstance(node, ast.AsyncFunctionDef) else "def"
        return Function(
            name=node.name, params=tuple(params),
            returns=ast.unparse(node.returns) if node.returns else None,
            doc=ast.get_docstring(node), span=self.spans.name_after(node, keyword, node.name),
            body=self.spans.of(node), is_async=isinstance(node, ast.AsyncFunctionDef),
            decorators=tuple(ast.unparse(d.func if isinstance(d, ast.Call) else d)
                             for d in node.decorator_list),
            returns_span=self.spans.of(node.returns) if node.returns else None,
        )

    def _param(self, arg: ast.arg, kind: str, default: ast.expr | None) -> Param:
        return Param(
            name=arg.arg, kind=kind,
            annotation=ast.unparse(arg.annotation) if arg.annotation else None,
            default=ast.unparse(default) if default is not None else None,
            span=self.spans.of(arg), default_is_lambda=isinstance(default, ast.Lambda),
        )

    # -- uses of names, in every scope -------------------------------------------------------

    def _walk_uses(self, top: ast.stmt, scope: str | None) -> None:
        if scope is not None:
            assert isinstance(top, (ast.FunctionDef, ast.AsyncFunctionDef))
            self.info.scopes[scope] = self._scope(top)
        called: set[int] = set()
        for node in ast.walk(top):  # breadth first: a call comes before its callee expression
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and isinstance(node.func.value, ast.Name):
                called.add(id(node.func))
                self._use(node.func, scope, node)
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                    and id(node) not in called:
                self._use(node, scope, None)
            elif isinstance(node, ast.Name):
                self.info.names.append((node.id, self.spans.of(node), scope))

    def _use(self, node: ast.Attribute, scope: str | None, call: ast.Call | None) -> None:
        assert isinstance(node.value, ast.Name)
        span = self.spans.attr(node)
        args: list[Arg] = []
        star = False
        if call is not None:
            for a in call.args:
                if isinstance(a, ast.Starred):
                    star = True
                    continue
                args.append(Arg(self.spans.of(a), literal_kind(a),
                                a.id if isinstance(a, ast.Name) else None))
            for kw in call.keywords:
                if kw.arg is None:
                    star = True
                    continue
                args.append(Arg(self.spans.of(kw.value), literal_kind(kw.value),
                                kw.value.id if isinstance(kw.value, ast.Name) else None, kw.arg))
        self.info.uses.append(Use(
            base=node.value.id, attr=node.attr, span=span, base_span=self.spans.of(node.value),
            scope=scope, call=tuple(args) if call is not None else None,
            call_span=self.spans.of(call) if call is not None else None, star=star,
        ))

    def _scope(self, fn: ast.FunctionDef | ast.AsyncFunctionDef) -> Scope:
        params = tuple(a.arg for a in [*fn.args.posonlyargs, *fn.args.args, *fn.args.kwonlyargs])
        declared: set[str] = set()
        assigned: set[str] = set()
        assigns: list[ast.Assign] = []
        for node in ast.walk(fn):  # one walk: a function body is walked for uses too
            if isinstance(node, (ast.Global, ast.Nonlocal)):
                declared.update(node.names)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                assigned.add(node.id)
            elif isinstance(node, ast.Assign):
                assigns.append(node)
        for node in assigns:  # after the walk: ``global g`` may come after ``g = p``
            self._injection(node, params, declared, fn.name)
        return Scope(params, assigned - declared, declared, self.spans.of(fn))

    def _injection(self, node: ast.Assign, params: tuple[str, ...], declared: set[str],
                   func: str) -> None:
        """``global g; g = param`` (also ``g1, g2 = p1, p2``): the global holds what callers pass."""
        for target in node.targets:
            pairs: list[tuple[ast.expr, ast.expr]] = [(target, node.value)]
            if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple) \
                    and len(target.elts) == len(node.value.elts):
                pairs = list(zip(target.elts, node.value.elts))
            for t, v in pairs:
                if isinstance(t, ast.Name) and t.id in declared and isinstance(v, ast.Name) \
                        and v.id in params:
                    self.info.injected[t.id] = (func, v.id)


def parse_file(path: Path, text: str) -> FileInfo:
    """Read ``text`` (the contents of ``path``); a syntax error is recorded, never raised."""
    info = FileInfo(path=path, text=text)
    try:
        tree = ast.parse(text, filename=str(path))
    except (SyntaxError, ValueError) as error:
        line = max((getattr(error, "lineno", None) or 1) - 1, 0)
        col = max((getattr(error, "offset", None) or 1) - 1, 0)
        msg = getattr(error, "msg", None) or str(error)
        info.error = (f"syntax error: {msg}", Span(line, col, line, col + 1))
        return info
    _Reader(info, tree).read()
    return info
