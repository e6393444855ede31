"""The one-process host: every service of an application live in this process.

``App`` builds an application (runs the root's top level, which creates the other services),
writes the build output, and then keeps the services live with their runtime events journaled in
a state folder. It is the router of every proxy it hands out: a call between services runs on the
caller's thread, through the caller's and the callee's tapes. ``distdev dev``, the test helpers
and the debugger all run applications through it.
"""

from __future__ import annotations

import itertools
import os
import shutil
import sys
import tempfile
import threading
import uuid
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

from .. import rules
from .._version import VERSION, local_zone, recorded_hash_seed
from ..compartment import state as thread_state
from ..errors import ExportError, HashSeedError, ServiceLoadError, ServiceUnavailableError
from ..journal import FORMAT_NAME, FORMAT_VERSION, BundleFile, Header, JournalWriter
from ..membrane import (
    NotPlain,
    ServiceProxy,
    args_to_wire,
    from_wire,
    make_proxy,
    plain_call_copy,
    rebuild_exception,
    service_state,
    with_the_outside,
)
from ..resources import (
    DUMP_FILE,
    SECRETS_FOLDER,
    Declared,
    Deliver,
    Rejected,
    PostgresServer,
    ResourceError,
    ResourceHost,
    SecretStore,
    data_folder,
    from_environment,
    generated,
    is_postgres,
    remove_cluster,
)
from ..rules import NOT_IMPORTED
from ..service import BUILD_CHAIN, CallFailed, Recorder, Service
from ._output import BuildOutput, clear_build_output, write_build_output

__all__ = ["App"]


class _Outside:
    """The receiver for values returned to code outside every service (tests, HTTP)."""

    def __init__(self, app: App, callee: Service) -> None:
        self._app = app
        self.callee = callee

    def resolve_class(self, module: str, qualname: str) -> type:
        return self.callee.resolve_class(module, qualname)

    def make_proxy(self, service_id: str) -> ServiceProxy:
        return make_proxy(service_id, self._app, None)


class _NoModules:
    """The receiver of what a resource answers the outside: plain values and stdlib errors."""

    def __init__(self, app: App) -> None:
        self._app = app

    def resolve_class(self, module: str, qualname: str) -> type:
        import importlib

        value: Any = importlib.import_module(module)
        for part in qualname.split("."):
            value = getattr(value, part)
        if not isinstance(value, type):
            raise TypeError(f"{module}.{qualname} is not a class")
        return value

    def make_proxy(self, service_id: str) -> ServiceProxy:
        return make_proxy(service_id, self._app, None)


class _BufferedWriter(JournalWriter):
    """A build journal: records wait in memory until the header, which carries the bundle
    (known only once the build has imported everything), can be written first."""

    def __init__(self, path: Path) -> None:
        import io

        super().__init__(path, io.BytesIO(), 1)

    def finish(self, header: Header) -> None:
        self.flush()  # the writer's own buffer into the BytesIO
        body = self._file.getvalue()  # type: ignore[attr-defined]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "wb") as f:
            header_writer = JournalWriter(self.path, f, 0)
            header_writer.write(header)
            header_writer.flush()
            f.write(body)


class App:
    """An application whose services all live in this process."""

    def __init__(self, entry: str | os.PathLike[str], *, out: str | os.PathLike[str],
                 state: str | os.PathLike[str] | None = None) -> None:
        path = Path(entry).resolve()
        if not path.is_file():
            raise ServiceLoadError(
                f"no service file at {path}: pass the root service's .py file "
                "(for example examples/shop/app.py)"
            )
        if path.suffix != ".py":
            raise ServiceLoadError(f"{path} is not a Python file: a service is a .py module")
        self.root = path.parent
        self.entry = path.name
        self.root_id = path.stem
        self.out = Path(out).resolve()
        self.state_dir = Path(state).resolve() if state is not None else None
        self.services: dict[str, Service] = {}
        self.resources: dict[str, ResourceHost] = {}
        """The resources the services declared, open on the build's storage, then the state's."""
        self._postgres: dict[str, PostgresServer] = {}
        """A throwaway PostgreSQL server for each resource on PostgreSQL: the build writes into
        it (its dump is the build's content), and the App then runs on it."""
        self.build_output: BuildOutput | None = None
        self._writers: dict[str, JournalWriter] = {}
        self._live_writers: tuple[JournalWriter, ...] = ()
        """The journals of a live app, which each outside call flushes."""
        self._chain_prefix = uuid.uuid4().hex[:12]
        self._chains = itertools.count(1)
        self.phase = "new"

    # -- building ---------------------------------------------------------------------------

    def build(self) -> BuildOutput:
        """Run the root's top level (creating every service) and write the build output."""
        if self.phase != "new":
            raise RuntimeError("an App builds once")
        if recorded_hash_seed() is None:
            raise HashSeedError(
                "this process runs under a random PYTHONHASHSEED, so the order of sets and of "
                "str hashing would differ in every replay: a journal recorded here could not "
                "replay exactly. Run `distdev build` or `distdev dev` (they pin it), set "
                "PYTHONHASHSEED=0, or run pytest with distdev's plugin (it pins it).")
        self.phase = "build"
        clear_build_output(self.out)
        try:
            root = self.create_service(self.root_id, None, self.entry)
            root.run_top_level(BUILD_CHAIN)
        except BaseException:
            self._close_writers()
            raise
        for service in self.services.values():
            writer = self._writers[service.id]
            assert isinstance(writer, _BufferedWriter)
            writer.finish(self.header(service))
        for resource in self.resources.values():  # what the build wrote, complete on disk
            resource.settle()
            resource.close()
            if resource.id in self._postgres:
                self._postgres[resource.id].dump(
                    data_folder(self.out, resource.declared) / DUMP_FILE)
        self.build_output = write_build_output(
            self.root_id, self.root, list(self.services.values()), self.out,
            outside=[self.state_dir] if self.state_dir is not None else [],
            resources=[r.declared for r in self.resources.values()])
        self.phase = "built"
        return self.build_output

    def start(self) -> App:
        """Build, then go live; on failure, close what was opened. Returns the App."""
        try:
            self.build()
            self.go_live()
        except BaseException:
            self.close()
            raise
        return self

    def header(self, service: Service) -> Header:
        return Header(
            seq=0,
            format=FORMAT_NAME,
            version=FORMAT_VERSION,
            service=service.id,
            distdev=VERSION,
            python=sys.version.split()[0],
            hash_seed=recorded_hash_seed(),
            tz=local_zone(),
            app_root=str(self.root),
            entry=service.entry,
            bundle=[BundleFile(p, h, s) for p, h, s in service.compartment.bundle_files()],
            services=sorted({other.entry for other in self.services.values()}),
        )

    def create_service(self, service_id: str, parent: str | None, entry: str) -> Service:
        """Create a service and run its top level (the router side of ``import_service``)."""
        if not (self.root / entry).is_file():
            raise ServiceLoadError(f"no service file at {self.root / entry}")
        if parent is not None:
            self._refuse_cycle(service_id, parent, entry)
        for other in self.services.values():  # later imports of it are refused as they come
            if other.entry != entry and str(self.root / entry) in other.compartment.files:
                raise ServiceLoadError(f"{other.id} imported {entry} as a module before it "
                                       f"became service {service_id}; {NOT_IMPORTED}")
        writer = _BufferedWriter(self.out / "services" / service_id / "journal.cbor")
        self._writers[service_id] = writer
        if service_id in self.resources:
            raise ServiceLoadError(f"{service_id} is already a resource; give the service "
                                   "another name (import_service(path, name=...))")
        service = Service(service_id, parent, self.root, entry, self, Recorder(writer))
        service.secrets = self._reveal
        self.services[service_id] = service
        if parent is not None:
            service.run_top_level(thread_state.chain or BUILD_CHAIN)
        return service

    def create_resource(self, resource_id: str, parent: str, kind: str,
                        options: dict[str, Any]) -> None:
        """Open a resource a service declared, its storage in the build output: what the
        build writes into it is what a deployment starts with (the router side of
        ``resources.<kind>``)."""
        if resource_id in self.services or resource_id in self.resources:
            raise ServiceLoadError(f"{resource_id} already names a service or resource; give "
                                   "the resource another name")
        declared = Declared(resource_id, parent, kind, dict(options))
        if kind == "secret" and "generate" in options:
            SecretStore(self.out / SECRETS_FOLDER).write(resource_id,
                                                         generated(options["generate"]))
        self.resources[resource_id] = self._open(declared, self.out)

    def _open(self, declared: Declared, base: Path) -> ResourceHost:
        if not is_postgres(declared):
            return ResourceHost(declared, base)
        server = self._postgres.get(declared.id)
        if server is None:
            server = PostgresServer(Path(tempfile.mkdtemp(prefix="distdev-pg-")))
            self._postgres[declared.id] = server
            server.start()
        return ResourceHost(declared, base, dsn=server.dsn)

    def _reveal(self, resource_id: str, version: int) -> str:
        if self.phase == "build":
            raise ResourceError(
                f"{resource_id}.reveal() was called at build time; a secret is revealed at "
                "runtime (in an export), so that its value is in no build state")
        return SecretStore(self._state_folder() / SECRETS_FOLDER).read(resource_id,
                                                                            version)

    def _state_folder(self) -> Path:
        return self.state_dir or self.out.parent / "state"

    def _refuse_cycle(self, service_id: str, parent: str, entry: str) -> None:
        """A service whose file is already on the way from the root to it would import its
        own ancestors again at every level: refused at the ``import_service`` that closes
        the cycle, naming it (the language server reports the same rule in the editor)."""
        ancestors: list[Service] = []
        current: str | None = parent
        while current is not None:
            ancestors.append(self.services[current])
            current = ancestors[-1].parent
        ancestors.reverse()
        for i, ancestor in enumerate(ancestors):
            if ancestor.entry == entry:
                steps = [f"{s.id} ({s.entry})" for s in ancestors[i:]]
                problem = rules.service_cycle_problem([*steps, f"{service_id} ({entry})"])
                where = self.services[parent].code_location()
                raise ServiceLoadError(f"{problem}; the cycle closes at {where}")

    def go_live(self) -> None:
        """After the build: journal runtime events in the state folder and serve calls."""
        if self.phase != "built":
            raise RuntimeError("go_live() follows build()")
        state_dir = self._state_folder()
        self._deploy_resources(state_dir)
        for service in self.services.values():
            journal = state_dir / service.id / "journal.cbor"
            journal.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.out / "services" / service.id / "journal.cbor", journal)
            writer = JournalWriter.append_to(journal)
            self._writers[service.id] = writer
            service.tape = Recorder(writer)
            service.phase = "runtime"
        self._live_writers = tuple(self._writers.values())
        self.state_dir = state_dir
        self.phase = "runtime"
        for resource in self.resources.values():
            resource.start_delivery(self._deliverer(resource.id), self._resource_log)

    def _deliverer(self, resource_id: str) -> Deliver:
        """How a resource in this process delivers (a queue's messages): an incoming call of
        the consumer, on the delivery's thread, whose caller is the resource and whose caller
        seq names the message and attempt, as under an engine."""
        def deliver(service_id: str, export: str, caller_seq: str, args: list[Any]) -> Any:
            service = self._service(service_id)
            try:
                return service.handle_call(resource_id, f"{resource_id}-{caller_seq}", export,
                                           args, {}, caller_seq)
            except CallFailed as failed:
                raise Rejected(f"{failed.info.type}: {failed.info.message}") from None
            finally:
                self.flush()
        return deliver

    @staticmethod
    def _resource_log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    def _deploy_resources(self, state_dir: Path) -> None:
        """Start every resource from what the build wrote: its storage copied into the state
        folder (a dev session starts from its build each time), secrets from the environment
        read now."""
        store = SecretStore(state_dir / SECRETS_FOLDER)
        shutil.rmtree(store.folder, ignore_errors=True)
        SecretStore(self.out / SECRETS_FOLDER).copy_missing(store)
        for resource_id, built in list(self.resources.items()):
            declared = built.declared
            if declared.kind == "secret":
                from_environment(resource_id, declared.options, store, os.environ)
            elif not is_postgres(declared):  # PostgreSQL: its server holds the build's content
                source, target = data_folder(self.out, declared), data_folder(state_dir, declared)
                shutil.rmtree(target, ignore_errors=True)
                if source.is_dir():
                    shutil.copytree(source, target)
            self.resources[resource_id] = self._open(declared, state_dir)

    def service(self, service_id: str) -> ServiceProxy:
        """A proxy to a service or resource, held by the outside: calls arrive from caller
        ``""``."""
        if service_id not in self.resources:
            self._service(service_id)
        return make_proxy(service_id, self, None)

    def state(self, service_id: str) -> dict[str, Any]:
        """A service's JSON-ready state, as ``distdev replay --json`` prints it."""
        return service_state(self._service(service_id).module.__dict__)

    def journal(self, service_id: str) -> Path:
        """The journal a service is writing now (the build journal until ``go_live``)."""
        self._service(service_id)
        return self._writers[service_id].path

    def journal_positions(self) -> dict[str, int]:
        """Service id -> the seq of the last event in the journal it writes now."""
        return {sid: writer.next_seq - 1 for sid, writer in self._writers.items()}

    def close(self) -> None:
        """Record each live service's last state digest, flush and close every journal and
        unload the services' modules."""
        for resource in self.resources.values():  # no delivery into a closing service
            resource.stop_delivery()
        if self.phase == "runtime":
            for service in self.services.values():
                service.record_digest()
        self._close_writers()
        for resource in self.resources.values():
            resource.close()
        for server in self._postgres.values():
            server.stop()
            remove_cluster(server.folder)
            shutil.rmtree(server.folder, ignore_errors=True)
        self._postgres.clear()
        for service in self.services.values():
            service.compartment.unload()
        self.phase = "closed"

    def _close_writers(self) -> None:
        for writer in self._writers.values():
            if not isinstance(writer, _BufferedWriter):
                writer.close()

    def flush(self) -> None:
        for writer in self._live_writers:
            writer.flush()  # nothing, for a writer that holds no record

    def _new_chain(self) -> str:
        """An id for a call chain that starts outside every service."""
        return f"{self._chain_prefix}-{next(self._chains)}"

    # -- the router -------------------------------------------------------------------------

    def _service(self, service_id: str) -> Service:
        service = self.services.get(service_id)
        if service is None:
            known = ", ".join(self.services) or "none"
            raise ServiceUnavailableError(
                f"no service {service_id!r} in this application (services: {known})"
            )
        return service

    @property
    def local_service(self) -> Callable[[str], Service | None]:
        """``local_service(target)``: the service ``target`` if it lives in this process (a
        call to it may take the service layer's in-process fast path). The services' own
        ``get``, which the fast path asks at every call."""
        return self.services.get

    def exports(self, target: str) -> Collection[str] | None:
        callee = self._callee(target)
        return None if callee is None else callee.exports()

    def exports_settled(self, target: str) -> bool:
        """A proxy held outside may keep each export's callable once the target exists:
        ``call`` checks the export at every call, so a kept one that the service's code no
        longer exports is refused as a fresh one would be."""
        return self._callee(target) is not None

    def _callee(self, target: str) -> Service | ResourceHost | None:
        return self.services.get(target) or self.resources.get(target)

    def bind(self, holder: Any, target: str, export: str) -> Callable[..., Any] | None:
        """What a proxy held outside runs for ``target.export`` (bound once per export): a
        call from the outside to a service of this process with plain arguments goes straight
        to the callee's ``handle_call`` (the arguments copied and encoded in one walk, which is
        their wire form: plain data holds no service module's class); everything else is
        ``call``. A service's own proxies are bound by its own router."""
        if holder is not None:
            return None
        services = self.services
        answers: list[_Outside] = []  # the receiver of what the callee answers, made once

        def send(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            callee = services.get(target)
            if callee is not None and thread_state.service is None:
                exports = callee._exports
                if exports is not None and export in exports:
                    try:
                        args_wire, kwargs_wire, encoded = plain_call_copy(args, kwargs)
                    except (NotPlain, RecursionError):
                        pass
                    else:
                        if not answers or answers[0].callee is not callee:
                            answers[:] = [_Outside(self, callee)]
                        return self._from_outside(
                            answers[0], callee.handle_call, "", self._new_chain(), export,
                            args_wire, kwargs_wire, None, encoded)
            return self.call(None, target, export, args, kwargs)

        return send

    def call(self, holder: Any, target: str, export: str, args: tuple[Any, ...],
             kwargs: dict[str, Any]) -> Any:
        callee = self._callee(target) or self._service(target)
        if export not in callee.exports():
            raise ExportError(f"service {target} does not export {export!r}")

        caller = holder if isinstance(holder, Service) else None
        if caller is not None:
            args_wire, kwargs_wire = args_to_wire(args, kwargs, target, export)
        else:  # from the outside, which imports no service module: the callee's own classes
            with with_the_outside():
                args_wire, kwargs_wire = args_to_wire(args, kwargs, target, export)
        thread = thread_state
        chain = (thread.chain if thread.service is not None else None) or self._new_chain()

        def perform(call_seq: int | str | None = None) -> Any:
            return callee.handle_call(caller.id if caller else "", chain, export, args_wire,
                                      kwargs_wire)

        if caller is not None:
            return caller.call_out(target, export, args_wire, kwargs_wire, perform)
        if isinstance(callee, ResourceHost):  # from the outside: a test, `distdev call`
            try:
                wire = perform()
            except CallFailed as failed:
                raise rebuild_exception(failed.info, target, _NoModules(self)) from None
            return from_wire(wire, _NoModules(self))
        return self._from_outside(_Outside(self, callee), perform)

    def _from_outside(self, outside: _Outside, perform: Callable[..., Any], *args: Any) -> Any:
        """The outcome of ``perform(*args)``, a call from the outside to ``outside.callee``, as
        the outside gets it; the journals are flushed to the OS once it returns to code outside
        every service, so a reader sees each outside call's records."""
        try:
            wire = perform(*args)
        except CallFailed as failed:
            raise rebuild_exception(failed.info, outside.callee.id, outside) from None
        finally:
            if thread_state.service is None:
                self.flush()
        return from_wire(wire, outside)
