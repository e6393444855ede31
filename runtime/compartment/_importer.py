"""The per-service importer: application modules loaded fresh for one service, then the
shared standard library and installed packages (covered by ``_interpose``). The files a service
loads are its bundle. (Why per-service copies: the package docstring.)

Another service's module is never loaded here, by an import or to rebuild a value or an
exception that crossed: its top level would run a second time, inside this service
(``rules.SERVICE_MODULE_GLOBAL``)."""

from __future__ import annotations

import builtins
import hashlib
import os
import sys
import types
from collections.abc import Collection
from pathlib import Path
from typing import Any

from ..errors import MembraneError, ServiceLoadError
from ..rules import (
    MOVE_TO_HELPER,
    NOT_IMPORTED,
    SERVICE_MODULE_GLOBAL,
    app_module_name,
    compartment_module_name,
)
from ._builtins import service_builtins
from ._context import ServiceSide, in_effect

_real_import = builtins.__import__


class Compartment:
    """Loads one service's application modules from ``root`` and records them as its bundle."""

    def __init__(self, service: ServiceSide, root: Path, entry: str,
                 app_root: str | None = None) -> None:
        self.service = service
        self.root = root
        self.app_root = app_root or str(root)
        """The application folder as the journal's code knew it: what ``__file__`` says, so
        that paths the code builds from it are the same in a replay from a bundle."""
        self.entry = entry
        self._paths: dict[str, Path] = {}  # module name in sys.modules -> the file it runs
        entry_dir = (root / entry).parent
        self.search = [entry_dir] if entry_dir == root else [entry_dir, root]
        self.modules: dict[str, types.ModuleType] = {}
        self.bundle: dict[str, bytes] = {}
        self.files: set[str] = set()
        self._registered: list[str] = []
        self._service_file_of: dict[str, str | None] = {}  # module name -> _other_service_file
        self._service_files_known = 0  # how many service files it was worked out with
        self.builtins_module = service_builtins(service, self.import_module)
        self.builtins = self.builtins_module.__dict__

    def load_entry(self) -> types.ModuleType:
        """Create the service's module (its top level is run by ``exec_module``)."""
        path = self.root / self.entry
        name = Path(self.entry).stem
        module = self._new_module(name, path, package="")
        module.__dict__[SERVICE_MODULE_GLOBAL] = self.entry
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        path = self._paths[module.__name__]
        source = path.read_bytes()
        self._remember(path, source)
        code = compile(source, str(path), "exec", dont_inherit=True)
        exec(code, module.__dict__)

    def _new_module(self, name: str, path: Path, package: str) -> types.ModuleType:
        # Registered in sys.modules under a name unique to this copy: dataclasses, typing and
        # msgspec look classes' modules up there. The app-relative name is before the "[".
        serial = 1
        key = compartment_module_name(name, self.service.id)
        while key in sys.modules:
            serial += 1
            key = compartment_module_name(name, self.service.id, serial)
        module = types.ModuleType(key)
        sys.modules[key] = module
        self._registered.append(key)
        self._paths[key] = path
        module.__file__ = os.path.join(self.app_root, path.relative_to(self.root))
        module.__package__ = package
        module.__builtins__ = self.builtins  # type: ignore[attr-defined]
        module.__dict__["__distdev_service__"] = self.service.id
        self.modules[name] = module
        return module

    def unload(self) -> None:
        """Forget this compartment's modules in ``sys.modules``."""
        for key in self._registered:
            sys.modules.pop(key, None)
        self._registered.clear()

    def _remember(self, path: Path, source: bytes) -> None:
        rel = path.relative_to(self.root).as_posix()
        if rel not in self.bundle and self.service.phase == "runtime":
            digest = hashlib.sha256(source).hexdigest()
            self.service.loaded_source(rel, digest, source)
        self.bundle[rel] = source
        self.files.add(str(path))

    def keep_data(self, rel: str, data: bytes) -> None:
        """An application file the service read: it travels in the bundle with the code, so
        the service reads it where it runs next (a new one after the build joins the journal,
        as a lazily imported module does)."""
        if self.bundle.get(rel) == data:
            return
        if self.service.phase == "runtime":
            self.service.loaded_source(rel, hashlib.sha256(data).hexdigest(), data)
        self.bundle[rel] = data

    def source_of(self, module: types.ModuleType) -> bytes:
        """The source a module of this compartment was executed from."""
        return self.bundle[self._paths[module.__name__].relative_to(self.root).as_posix()]

    def bundle_files(self) -> list[tuple[str, str, bytes]]:
        """The bundle as (path, sha256, source), in load order."""
        return [(p, hashlib.sha256(s).hexdigest(), s) for p, s in self.bundle.items()]

    # -- import ---------------------------------------------------------------------------

    def import_module(
        self,
        name: str,
        globals: dict[str, Any] | None = None,
        locals: Any = None,
        fromlist: Any = (),
        level: int = 0,
    ) -> Any:
        """The service's ``__import__``: app files per service, then the shared modules (with
        ``builtins`` its own)."""
        if level:
            name = _resolve_relative(name, (globals or {}).get("__package__") or "", level)
        top = name.partition(".")[0]
        if self._app_path(top) is not None:
            module = self._import_app(name)
            if fromlist:
                for item in fromlist:
                    if item != "*" and not hasattr(module, item):
                        self._try_submodule(f"{name}.{item}")
                return module
            return self.modules[top]
        if name == "builtins":
            return self.builtins_module
        with in_effect():  # a first import may write bytecode caches; that is not service IO
            return _real_import(name, globals, locals, fromlist, 0)

    def _try_submodule(self, name: str) -> None:
        try:
            self._import_app(name)
        except ServiceLoadError:
            pass

    def _app_path(self, name: str) -> tuple[Path, bool] | None:
        """The file of an app module (and whether it is a package), or None if not an app one."""
        parts = name.split(".")
        for base in self.search:
            stem = base.joinpath(*parts)
            if stem.with_suffix(".py").is_file():
                return stem.with_suffix(".py"), False
            if (stem / "__init__.py").is_file():
                return stem / "__init__.py", True
        return None

    def _import_app(self, name: str) -> types.ModuleType:
        if name in self.modules:
            return self.modules[name]
        parent, _, _ = name.rpartition(".")
        if parent:
            self._import_app(parent)
        found = self._app_path(name)
        if found is None:
            raise ModuleNotFoundError(f"No module named {name!r} in the application", name=name)
        path, is_package = found
        service_file = self._other_service_file(name)
        if service_file is not None:
            raise ServiceLoadError(
                f"{self.service.id} imports {name}, the module of service file {service_file}; "
                f"{NOT_IMPORTED}"
            )
        module = self._new_module(name, path, name if is_package else parent)
        if is_package:
            module.__path__ = [os.path.dirname(module.__file__ or "")]
        try:
            self.exec_module(module)
        except BaseException:
            del self.modules[name]
            sys.modules.pop(module.__name__, None)
            raise
        if parent:
            setattr(self.modules[parent], name.rpartition(".")[2], module)
        return module

    def _other_service_file(self, name: str) -> str | None:
        """The file of another service's module if that is what application module ``name``
        would load (whether or not the file is here: a replay has only its bundle's), the one
        rule this compartment's imports and class resolution both apply."""
        known = self.service.service_files()
        if len(known) != self._service_files_known:  # a build's next service: work it out again
            self._service_file_of.clear()
            self._service_files_known = len(known)
        if name not in self._service_file_of:  # asked for every value of a class that crosses
            self._service_file_of[name] = self._find_service_file(name, known)
        return self._service_file_of[name]

    def _find_service_file(self, name: str, known: Collection[str]) -> str | None:
        parts = name.split(".")
        for base in self.search:
            stem = base.joinpath(*parts)
            for path in (stem.with_suffix(".py"), stem / "__init__.py"):
                rel = path.relative_to(self.root).as_posix()
                if rel != self.entry and rel in known:
                    return rel
                if path.is_file():
                    return None  # the module it loads is not a service's
        return None

    def resolve_class(self, module: str, qualname: str) -> type:
        """A class by module and qualified name, as this service sees it: from its own copy of
        an application module, or a shared module (imported if it is not yet: nothing it does
        then is the service's IO). Never from another service's module."""
        module = app_module_name(module)
        service_file = None if module in self.modules else self._other_service_file(module)
        if service_file is not None:
            raise MembraneError(
                f"{self.service.id} received a {qualname}, defined in service module "
                f"{service_file}; a service's module is never imported into another service: "
                f"{MOVE_TO_HELPER}"
            )
        if module in self.modules or self._app_path(module.partition(".")[0]) is not None:
            obj: Any = self._import_app(module)
        else:
            obj = sys.modules.get(module)
            if obj is None:
                with in_effect():
                    obj = _real_import(module, None, None, ["_"], 0)
        for part in qualname.split("."):
            obj = getattr(obj, part)
        if not isinstance(obj, type):
            raise TypeError(f"{module}:{qualname} is not a class")
        return obj


def _resolve_relative(name: str, package: str, level: int) -> str:
    parts = package.split(".") if package else []
    if level > len(parts) + (0 if parts else 0) or not package:
        raise ImportError("attempted relative import with no known parent package")
    base = ".".join(parts[: len(parts) - level + 1])
    return f"{base}.{name}" if name else base
