"""Reading annotations as source text: does a literal fit, can a type cross a membrane.

Both answers are conservative: an annotation naming anything this module cannot see through
(a TypeVar, a class from an installed package, a Protocol) is "unknown" and never reported.
"""

from __future__ import annotations

import ast
from pathlib import Path

from distdev import rules

from ._syntax import FileInfo, parse_file

__all__ = ["accepts", "membrane_problem", "MEMBRANE_TYPES"]

MEMBRANE_TYPES = rules.MEMBRANE_TYPES  # as the runtime's refusals list them
_SERIALIZABLE = {
    *rules.MEMBRANE_VALUE_TYPES,
    *(kind.rpartition(".")[2] for kind in rules.MEMBRANE_KINDS),  # msgspec.Struct: ``Struct``
    # How annotations also spell those types (typing's aliases, Enum's subclasses, abstract
    # containers); the runtime looks at the values themselves.
    "NoneType", "IntEnum", "StrEnum", "List", "Dict", "Tuple", "Set", "FrozenSet", "Optional",
    "Union", "Sequence", "Mapping", "MutableMapping", "MutableSequence", "Collection", "Iterable",
    "AbstractSet",
    # Annotations that promise nothing: a value's own type decides at the call.
    "Any", "object",
}
_NOT_SERIALIZABLE = {
    "Callable": "a function", "Iterator": "an iterator", "Generator": "a generator",
    "AsyncIterator": "an iterator", "AsyncGenerator": "a generator", "Coroutine": "a coroutine",
    "Awaitable": "an awaitable", "IO": "an open file", "TextIO": "an open file",
    "BinaryIO": "an open file", "TextIOWrapper": "an open file", "BufferedReader": "an open file",
    "BufferedWriter": "an open file", "FileIO": "an open file", "socket": "a socket",
    "Thread": "a thread", "Lock": "a lock", "RLock": "a lock", "Popen": "a process",
    "ModuleType": "a module", "FunctionType": "a function", "LambdaType": "a function",
    "Connection": "a connection", "Queue": "a queue", "Event": "a threading event",
}
_SERIALIZABLE_BASES = {"Enum", "IntEnum", "StrEnum", "Flag", "IntFlag", "Struct", "TypedDict"}
_WIDER = {"bool": {"int", "float", "complex"}, "int": {"float", "complex"}, "float": {"complex"}}
_BUILTIN = {"int", "str", "float", "bool", "None", "NoneType", "bytes", "list", "dict", "tuple",
            "set", "frozenset", "complex", "List", "Dict", "Tuple", "Set", "FrozenSet"}
_ALIASES = {"List": "list", "Dict": "dict", "Tuple": "tuple", "Set": "set",
            "FrozenSet": "frozenset", "NoneType": "None"}


def _parse(annotation: str) -> ast.expr | None:
    try:
        return ast.parse(annotation, mode="eval").body
    except SyntaxError:
        return None


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _members(node: ast.expr) -> list[ast.expr]:
    """The alternatives of a union, flattened."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return _members(node.left) + _members(node.right)
    if isinstance(node, ast.Subscript) and _dotted(node.value) in ("Optional", "Union"):
        inner = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        extra = [ast.Constant(None)] if _dotted(node.value) == "Optional" else []
        return [m for e in inner for m in _members(e)] + extra
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        parsed = _parse(node.value)
        return _members(parsed) if parsed is not None else [node]
    return [node]


def accepts(annotation: str, kind: str) -> bool | None:
    """Whether a literal of builtin type ``kind`` fits ``annotation``; None when unknown."""
    tree = _parse(annotation)
    if tree is None:
        return None
    names: set[str] = set()
    for member in _members(tree):
        if isinstance(member, ast.Constant) and member.value is None:
            names.add("None")
            continue
        if isinstance(member, ast.Subscript) and _dotted(member.value) == "Literal":
            values = member.slice.elts if isinstance(member.slice, ast.Tuple) else [member.slice]
            names |= {type(v.value).__name__ if v.value is not None else "None"
                      for v in values if isinstance(v, ast.Constant)}
            continue
        base = member.value if isinstance(member, ast.Subscript) else member
        name = _dotted(base)
        if name in ("Any", "object"):
            return True
        if name is None or name not in _BUILTIN:
            return None
        names.add(_ALIASES.get(name, name))
    return kind in names or bool(_WIDER.get(kind, set()) & names)


def membrane_problem(info: FileInfo, annotation: str) -> str | None:
    """Why a value of type ``annotation`` (in ``info``) cannot cross a membrane, or None."""
    tree = _parse(annotation)
    return _walk(tree, info, 0) if tree is not None else None


def _walk(node: ast.expr, info: FileInfo, depth: int) -> str | None:
    if depth > 8:
        return None
    if isinstance(node, ast.Constant):
        if isinstance(node.value, str):
            parsed = _parse(node.value)
            return _walk(parsed, info, depth + 1) if parsed is not None else None
        return None
    if isinstance(node, ast.BinOp):
        return _walk(node.left, info, depth + 1) or _walk(node.right, info, depth + 1)
    if isinstance(node, ast.Subscript):
        head = _dotted(node.value)
        if head == "Literal":
            return None
        bad = _walk(node.value, info, depth + 1)
        if bad or head == "Annotated":
            return bad
        inner = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        for e in inner:
            bad = _walk(e, info, depth + 1)
            if bad:
                return bad
        return None
    if isinstance(node, (ast.Tuple, ast.List)):
        for e in node.elts:
            bad = _walk(e, info, depth + 1)
            if bad:
                return bad
        return None
    name = _dotted(node)
    if name is None or name in _SERIALIZABLE:
        return None
    if name in _NOT_SERIALIZABLE:
        return f"{_NOT_SERIALIZABLE[name]} cannot cross a membrane (allowed: {MEMBRANE_TYPES})"
    return _class_problem(info, name)


def _class_problem(info: FileInfo, name: str) -> str | None:
    """A class from this file or a project module: serializable only if a dataclass, an Enum
    or a msgspec Struct."""
    owner, cls = info, info.classes.get(name)
    if cls is None and name in info.imports:
        module, original, level, _ = info.imports[name]
        owner_file = _find_module(info.path, module, level)
        if owner_file is None:
            return None
        read = _read(owner_file)
        if read is None:
            return None
        owner, cls = read, read.classes.get(original or name)
    if cls is None:
        return None
    decorators = {_dotted(d.func if isinstance(d, ast.Call) else d) for d in cls.decorator_list}
    bases = {_dotted(b) for b in cls.bases}
    if "dataclass" in decorators or bases & _SERIALIZABLE_BASES:
        return None
    return (f"class {name} (in {owner.path.name}) is not a dataclass, Enum or msgspec.Struct, "
            f"so it cannot cross a membrane (allowed: {MEMBRANE_TYPES})")


def _find_module(path: Path, module: str, level: int) -> Path | None:
    """A project module as a service's compartment finds it: beside the file, then upwards."""
    parts = module.split(".") if module else []
    folders = [path.parent]
    if level:
        base = path.parent
        for _ in range(level - 1):
            base = base.parent
        folders = [base]
    else:
        folders += list(path.parent.parents)[:4]
    for folder in folders:
        candidate = folder.joinpath(*parts)
        if candidate.with_suffix(".py").is_file():
            return candidate.with_suffix(".py")
        if (candidate / "__init__.py").is_file():
            return candidate / "__init__.py"
    return None


_modules: dict[Path, tuple[float, FileInfo]] = {}


def _read(path: Path) -> FileInfo | None:
    try:
        mtime = path.stat().st_mtime
        cached = _modules.get(path)
        if cached is None or cached[0] != mtime:
            cached = (mtime, parse_file(path, path.read_text(encoding="utf-8", errors="replace")))
            _modules[path] = cached
        return cached[1]
    except OSError:
        return None
