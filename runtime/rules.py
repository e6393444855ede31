"""The rules every part of distdev must agree on, defined once.

What a service exports, how services are named and found, which values may cross a membrane,
and how a service's copy of an application module is named. The runtime applies these rules to
live objects; the language server, the mypy plugin and the debug adapter apply them to source
code. Each applies them here, so that what the editor completes is what a proxy can call.

Standard library only, and importing it changes nothing: the mypy plugin and the language
server import it inside their own processes.
"""

from __future__ import annotations

import ast
import dataclasses
import os
import posixpath
import re
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path

__all__ = [
    "EFFECT_DECORATORS", "ExportCandidate", "export_names", "is_public", "top_level_defs",
    "SERVICE_NAME", "RESERVED_SERVICE_NAMES", "service_name_problem", "default_service_name",
    "child_id", "service_cycle_problem", "ServicePathError", "resolve_service_path",
    "MEMBRANE_VALUE_TYPES", "MEMBRANE_KINDS", "MEMBRANE_TYPES",
    "SERVICE_MODULE_GLOBAL", "MOVE_TO_HELPER", "NOT_IMPORTED", "service_module_file",
    "is_service_of_tree", "SECRET_REFERENCE", "secret_reference",
    "compartment_module_name", "app_module_name", "is_app_folder", "app_files",
    "IMPORT_SERVICE_FULLNAME", "EFFECT_FULLNAME", "SERVICE_PROXY_FULLNAME",
]

# -- exports -------------------------------------------------------------------------------------

EFFECT_DECORATORS = frozenset({"effect", "distdev.effect"})
"""How a decorator that makes a function the service's own IO (``@distdev.effect``) is spelled."""


@dataclasses.dataclass(frozen=True)
class ExportCandidate:
    """A top-level name of a service module, as whoever reads the module sees it.

    ``defined_here``: bound by a ``def`` of that very name in this module (decorated or not) —
    not imported, not assigned. ``effect``: that function is an ``@effect``.
    """

    name: str
    defined_here: bool
    effect: bool = False


def top_level_defs(module: ast.Module) -> set[str]:
    """The names bound by a ``def`` at a module's top level, as a reader of its source sees
    them: directly, or inside a top-level ``if``/``else`` or the body of a ``try`` (not its
    handlers: they run only when the body failed)."""
    names: set[str] = set()
    todo: list[ast.stmt] = list(module.body)
    while todo:
        stmt = todo.pop()
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names.add(stmt.name)
        elif isinstance(stmt, (ast.If, ast.Try)):
            todo += [*stmt.body, *stmt.orelse]
    return names


def is_public(name: str) -> bool:
    return not name.startswith("_")


def export_names(candidates: Iterable[ExportCandidate],
                 all_names: Collection[str] | None) -> list[str]:
    """The names a proxy to the module reaches, in order.

    With ``__all__``: exactly the names it lists (whoever applies the rule checks they are
    functions). Without: every public function defined by a top-level ``def`` — a decorated one
    included (``@functools.lru_cache``, ``@app_cache``) — except ``@effect`` functions, which
    are the service's own IO.
    """
    if all_names is not None:
        listed = set(all_names)
        return [c.name for c in candidates if c.name in listed]
    return [c.name for c in candidates if is_public(c.name) and c.defined_here and not c.effect]


# -- service ids and paths -------------------------------------------------------------------------

SERVICE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*")
"""A service's own name: the last part of its id."""

RESERVED_SERVICE_NAMES = frozenset({"bundle"})
"""Names a service cannot have: ``OUT/services/<id>/bundle`` holds its code."""


def service_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a service, or None."""
    if not SERVICE_NAME.fullmatch(name) or name in RESERVED_SERVICE_NAMES:
        return (f"{name!r} cannot name a service (use letters, digits, '_' and '-'; not "
                f"{', '.join(map(repr, sorted(RESERVED_SERVICE_NAMES)))})")
    return None


def default_service_name(path: str) -> str:
    """A service's name when ``import_service`` gives no ``name=``: its file's stem."""
    return posixpath.basename(path).removesuffix(".py")


def child_id(parent_id: str, name: str) -> str:
    """The id of a service that ``parent_id`` creates under ``name``."""
    return f"{parent_id}/{name}"


def service_cycle_problem(steps: Iterable[str]) -> str:
    """Why services that import each other around a cycle (``steps``: each service on the way,
    the first one again at the end) cannot build: each ``import_service`` runs the imported
    service's top level, which would import the first again, without end."""
    return (f"services import each other in a cycle ({' -> '.join(steps)}); a service tree "
            "cannot contain one: pass a proxy down instead (orders.connect(billing))")


class ServicePathError(ValueError):
    """``import_service``'s path cannot name a service file. ``kind``: "empty", "absolute",
    "outside" (it leaves the application folder) or "not-py"."""

    def __init__(self, kind: str, path: str) -> None:
        super().__init__(kind)
        self.kind = kind
        self.path = path


def resolve_service_path(importer: str, path: str) -> str:
    """The application-relative file (posix) that ``import_service(path)`` names from the
    service file ``importer`` (itself application-relative): ``path`` is relative to the
    importer's folder and must stay inside the application folder."""
    if not path:
        raise ServicePathError("empty", path)
    if path.startswith("/"):
        raise ServicePathError("absolute", path)
    rel = posixpath.normpath(posixpath.join(posixpath.dirname(importer), path))
    if rel == ".." or rel.startswith("../"):
        raise ServicePathError("outside", path)
    if not rel.endswith(".py"):
        raise ServicePathError("not-py", path)
    return rel


# -- what may cross a membrane -------------------------------------------------------------------

MEMBRANE_VALUE_TYPES = (
    "None", "bool", "int", "float", "str", "bytes", "list", "tuple", "dict", "set", "frozenset",
    "datetime", "date", "time", "timedelta", "Decimal", "UUID",
)
"""The value types that cross by copy, by their names."""

MEMBRANE_KINDS = ("Enum", "dataclass", "msgspec.Struct", "ServiceProxy")
"""The kinds of class whose instances cross too (proxies by reference)."""

MEMBRANE_TYPES = (", ".join(MEMBRANE_VALUE_TYPES) + ", an Enum, a dataclass, a msgspec.Struct "
                  "or a service proxy")
"""What may cross, as messages say it."""

# -- resources -------------------------------------------------------------------------------------

SECRET_REFERENCE = "distdev.secret"
"""What a secret resource's ``reveal`` answers across the membrane: ``{SECRET_REFERENCE:
[resource id, version]}``. The caller's journal records this reference, never the value; the
caller turns it into the value outside its journal, from the deployment's secret store (or, in
a replay, the one ``--secrets`` names)."""


def secret_reference(wire: object, target: str | None = None) -> tuple[str, int] | None:
    """(resource id, version) if ``wire`` is a secret reference (answered by ``target``, when
    given: only a secret's own answer is one)."""
    if type(wire) is not dict or len(wire) != 1 or SECRET_REFERENCE not in wire:
        return None
    ref = wire[SECRET_REFERENCE]
    if type(ref) is not list or len(ref) != 2 or type(ref[0]) is not str \
            or type(ref[1]) is not int or (target is not None and ref[0] != target):
        return None  # an ordinary value
    return ref[0], ref[1]


# -- service modules -------------------------------------------------------------------------------

SERVICE_MODULE_GLOBAL = "__distdev_service_module__"
"""The global that only a service's own module holds: its file, application-relative.

A *service module* is the module of a service's file. No service's module is ever imported into
another service (its top level would run there again, unjournaled), so a class defined in one
cannot cross a membrane: a value of it is refused at the call site, and an exception of it
arrives as ``ServiceError``. Classes that cross are defined in helper modules."""

MOVE_TO_HELPER = "move the class to a helper module (a plain module the services import)"
"""What to do about a class defined in a service module, as messages say it."""

NOT_IMPORTED = ("a service's module is never imported into another service (its top level "
                "would run again there): call that service through its proxy, and move what "
                "both use to a helper module (a plain module the services import)")
"""Why a service cannot import another's module, and what to do, as messages say it."""


def is_service_of_tree(caller: str, service_id: str) -> bool:
    """Whether ``caller`` names a service of the tree ``service_id`` belongs to (its root or
    a descendant), rather than a client outside it: the ingress, ``distdev call``, a test."""
    root = service_id.partition("/")[0]
    return caller == root or caller.startswith(root + "/")


def service_module_file(namespace: Mapping[str, object]) -> str | None:
    """The application-relative file of the service module whose globals are ``namespace``,
    or None for any other module (a helper, the standard library, a package)."""
    found = namespace.get(SERVICE_MODULE_GLOBAL)
    return found if isinstance(found, str) else None


# -- module naming -------------------------------------------------------------------------------


def compartment_module_name(module: str, service_id: str, serial: int = 1) -> str:
    """The ``sys.modules`` key of ``service_id``'s own copy of application module ``module``
    (``models[app/billing]``); a second copy in one process gets ``#2``, and so on."""
    key = f"{module}[{service_id}]"
    return key if serial == 1 else f"{key}#{serial}"


def compartment_of(name: str) -> tuple[str, str] | None:
    """The (application module, service id) a ``sys.modules`` key names (``models[app/billing]``
    -> ``("models", "app/billing")``), or None for a key that is no compartment module's."""
    module, bracket, rest = name.partition("[")
    service, close, serial = rest.partition("]")
    if not bracket or not close or not module or not service or serial[:1] not in ("", "#"):
        return None
    return module, service


def app_module_name(name: str) -> str:
    """The application-relative name of a compartment module (``models[app/billing]`` ->
    ``models``); other names are returned as they are."""
    return name.partition("[")[0]


# -- the application's files ---------------------------------------------------------------------

_NOT_APP_FOLDERS = frozenset({"__pycache__", "node_modules"})


def is_app_folder(root: Path, folder: Path, outside: Collection[Path] = ()) -> bool:
    """Whether files in ``folder`` belong to the application under ``root``: not in a hidden
    folder (``.distdev/``, ``.git``, ``.venv``), ``__pycache__``, ``node_modules``, a virtual
    environment (a folder with ``pyvenv.cfg``) or one of the ``outside`` folders (a build's
    output and state). The dev watcher reloads on these files' code; a build ships them."""
    full = folder.resolve()
    try:
        parts = full.relative_to(root.resolve()).parts
    except ValueError:
        return False
    if any(part.startswith(".") or part in _NOT_APP_FOLDERS for part in parts):
        return False
    if any(full == d or d in full.parents for d in (p.resolve() for p in outside)):
        return False
    at = root.resolve()
    for part in parts:
        at = at / part
        if (at / "pyvenv.cfg").exists():
            return False
    return True


def app_files(root: Path, outside: Collection[Path] = ()) -> list[str]:
    """Every file of the application under ``root`` (``is_app_folder``), relative to it, sorted:
    what the service reads at runtime is there, on any host, as it was at the build."""
    found = []
    for folder, subfolders, files in os.walk(root):
        here = Path(folder)
        subfolders[:] = sorted(d for d in subfolders if is_app_folder(root, here / d, outside))
        for name in files:
            if not name.startswith(".") and (here / name).is_file():
                found.append((here / name).relative_to(root).as_posix())
    return sorted(found)


# -- where service code's names are defined ------------------------------------------------------
# A type checker knows a function or class by the module that defines it, not by ``distdev``,
# which re-exports it; a plugin hooks these names (lsp/mypy_plugin.py). tests/test_rules.py
# checks each against the object itself, so moving one breaks that test, not the plugin.

IMPORT_SERVICE_FULLNAME = "distdev.service._api.import_service"
EFFECT_FULLNAME = "distdev.service._api.effect"
SERVICE_PROXY_FULLNAME = "distdev.membrane._proxy.ServiceProxy"
