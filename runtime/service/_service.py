"""A service: one module in its compartment, behind its membrane, with its tape.

``Service`` is the callee side of every call (``handle_call``) and the owner of its effect seam
(``effect``, ``output``). Which tape it holds decides whether it records, replays or runs
detached; the code paths are otherwise the same, which is what makes replay faithful.
"""

from __future__ import annotations

import ast
import inspect
import sys
import time
import types
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any, Protocol, TypeVar

from .. import rules
from ..compartment import (
    Compartment,
    FileView,
    enter_decimal,
    enter_from_outside,
    in_effect,
    install_guards,
    leave_decimal,
    observing,
    running,
    state,
)
from ..errors import (
    DeterminismError,
    DistdevError,
    ExportError,
    MembraneError,
    PhaseError,
    ServiceIdClashError,
    ServiceLoadError,
)
from ..journal import FORMAT_VERSION, BundleFile
from ..membrane import (
    Router,
    ServiceProxy,
    call_arguments,
    error_info,
    from_wire,
    make_proxy,
    rebuild_exception,
    state_digest,
    to_wire,
    with_the_outside,
)
from . import _fast
from ._frozen import BUILD_CHAIN, FrozenGlobals
from ._gate import CallGate
from ._tape import CallFailed, Detached, Recorder, Tape

__all__ = ["Service", "ServiceRouter"]

_clock = time.perf_counter  # the real one: how long a digest takes is distdev's business

T = TypeVar("T")


class ServiceRouter(Router, Protocol):
    """The router a service is created with: it carries its proxies' calls, and it creates
    the children the service's top level imports (at build time)."""

    def create_service(self, service_id: str, parent: str | None, entry: str) -> Service: ...

    def create_resource(self, resource_id: str, parent: str, kind: str,
                        options: dict[str, Any]) -> None: ...


class Checkpoints(Protocol):
    """What takes a live service's checkpoints (``replayer.Checkpointer``): asked at the end
    of each recorded call whether one is due, told to take one at a point where none is
    open."""

    def due(self) -> bool: ...

    def take(self) -> bool: ...


class _HeldProxies:
    """The router of the proxies a service holds. Calls go to the service's router; what a
    target exports is journaled the first time the service's code asks, so a proxy answers
    ``hasattr(proxy, name)`` the same in a replay, where no callee is there to ask."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self._exports: dict[str, list[str] | None] = {}
        # A router holding its services in this process names them: their calls may take
        # the fast path (``_fast``).
        self._local: Callable[[str], Service | None] | None = getattr(
            service.router, "local_service", None)

    def exports(self, target: str) -> Collection[str] | None:
        if target in self._exports:
            return self._exports[target]
        service, router = self.service, self.service.router
        if state.service is not service or state.effect_depth or service.coverage == 1:
            return router.exports(target)  # not the service's code asking (or format 1's)

        def ask() -> list[str] | None:
            known = router.exports(target)
            return None if known is None else sorted(known)

        found: list[str] | None = service.effect("proxy.exports", [target], ask)
        self._exports[target] = found
        return found

    def exports_settled(self, target: str) -> bool:
        """Whether the service's code has had its answer for ``target`` (journaled, or from
        the journal): asked again, it answers the same without a record."""
        return target in self._exports

    def bind(self, holder: Any, target: str, export: str) -> Callable[..., Any] | None:
        """The service's own proxies to a service in this process may take the fast path."""
        local = self._local
        if local is None or holder is not self.service:
            return None
        return _fast.sender(holder, local, target, export, self.service.router.call)

    def call(self, holder: Any, target: str, export: str, args: tuple[Any, ...],
             kwargs: dict[str, Any]) -> Any:
        return self.service.router.call(holder, target, export, args, kwargs)


class _DigestSchedule:
    """How often a service digests its state: after every call while that costs little, and
    every N calls once it costs more than a small share of them (a large state), so a call
    pays at most about that share on average. The last digest is always recorded at a stop."""

    SHARE = 0.05  # of a call's time, spent on its digest
    TYPICAL_CALL = 5e-6  # seconds: a membrane call's own cost (the in-process fast path's)

    def __init__(self) -> None:
        self.last: dict[str, list[str]] = {}
        self.recorded = False
        self.every = 1
        self.since = 0  # calls since the last digest; one is due when it reaches ``every``

    def took(self, digest: dict[str, list[str]], seconds: float) -> None:
        self.last, self.recorded, self.since = digest, True, 0
        self.every = max(1, min(1000, int(seconds / (self.SHARE * self.TYPICAL_CALL))))


class Service:
    """One running instance of a service module."""

    def __init__(
        self,
        service_id: str,
        parent: str | None,
        root: Path,
        entry: str,
        router: ServiceRouter,
        tape: Tape | None = None,
        app_root: str | None = None,
        coverage: int = FORMAT_VERSION,
        build_services: Collection[str] = (),
    ) -> None:
        self.id = service_id
        self.parent = parent
        self.entry = entry
        self.router = router
        self.gate = CallGate()
        self.tape = tape if tape is not None else Detached()
        self.phase = "build"
        self.host: dict[str, Any] | None = None
        self.children: dict[str, str] = {}
        install_guards()  # process-wide, once: from the first service on, never before
        self.interposed: dict[str, Any] = {}
        self.coverage = coverage
        self.build_services = frozenset(build_services)  # from its journal's header
        self.compartment = Compartment(self, root, entry, app_root)
        # app_root: the folder the journal's code came from (a replay reads from a bundle).
        self.files = FileView(self, app_root or str(root), root, self.compartment.keep_data)
        self.module = self.compartment.load_entry()
        self.top_level_done = False
        self._exports: dict[str, Callable[..., Any]] | None = None
        self._digests = _DigestSchedule()
        self._held = _HeldProxies(self)
        self.patches: set[str] = set()
        """The changes (``distdev.patched``) its journal says its code has."""
        self.frozen: FrozenGlobals | None = None
        """A function's globals as its build left them, once its first call after the build
        has begun (``_frozen``)."""
        self.secrets: Callable[[str, int], str] | None = None
        """(secret resource id, version) -> its value: the store of the deployment it runs in
        (or, replaying, the one ``--secrets`` names); None: no store here."""
        self.checkpoints: Checkpoints | None = None
        """Asked after a recorded call ends with no call left open, while the call still holds
        the gate, whether a checkpoint is due there; taken there, or after the call's answer
        has left (``after_reply``)."""
        self.checkpoint_waits = False
        """A checkpoint found due waits for the answer of the call that found it."""

    def __repr__(self) -> str:
        return f"<Service {self.id} ({self.phase})>"

    @property
    def tape(self) -> Tape:
        """Where the service's effects and calls go (record, replay, or detached)."""
        return self._tape

    @tape.setter
    def tape(self, tape: Tape) -> None:
        # A recorder follows the schedule of interleaved calls only for a service that
        # interleaves them: for one that does not, its calls nest and it writes no switch.
        if isinstance(tape, Recorder):
            tape.interleaving = self.gate.interleaving
        self._tape = tape

    # -- running code -----------------------------------------------------------------------

    def run_top_level(self, chain: str) -> None:
        """Execute the module's top level as this service."""
        self.gate.enter(chain)
        decimal_context = enter_decimal(self)
        try:
            with running(self, chain):
                self.compartment.exec_module(self.module)
        finally:
            leave_decimal(decimal_context)
            self.gate.exit()
        self.top_level_done = True
        self._exports = self._find_exports()
        self.record_digest()

    def exports(self) -> dict[str, Callable[..., Any]]:
        """Export name -> function: ``__all__`` if defined, else public top-level functions
        defined in the module. An ``@effect`` function is the service's own IO, not an export
        (its wrapper is defined by distdev); list it in ``__all__`` to export it."""
        return self._exports if self._exports is not None else self._find_exports()

    def _find_exports(self) -> dict[str, Callable[..., Any]]:
        namespace = self.module.__dict__
        listed = namespace.get("__all__")
        # Read from the source, as the language server and the mypy plugin read it: a name
        # its module binds with `def`, whatever decorates it, still holding something callable.
        defs = rules.top_level_defs(ast.parse(self.compartment.source_of(self.module)))
        candidates = [rules.ExportCandidate(
                          name, name in defs and callable(value) and not isinstance(value, type),
                          hasattr(value, "__distdev_effect__"))
                      for name, value in namespace.items()]
        exports = {}
        for name in rules.export_names(candidates, listed):
            value = namespace[name]
            if not callable(value) or isinstance(value, type):
                raise DistdevError(
                    f"{self.id}'s __all__ lists {name!r}, which is not a function defined in it; "
                    "exports are the functions other services may call"
                )
            exports[name] = value
        return exports

    def handle_call(
        self, caller: str, chain: str, export: str, args: list[Any], kwargs: dict[str, Any],
        caller_seq: int | str | None = None, plain: bytes | None = None,
    ) -> Any:
        """Run one incoming call; return its result's wire form or raise ``CallFailed``.
        ``plain``: the arguments are a plain copy nobody else holds, and these their bytes
        (``_fast.serve`` then neither checks nor encodes them)."""
        if export not in self.exports() and not self.tape.replaying:
            # Refused before it is journaled (a replay meets only what older releases journaled).
            listed = ", ".join(self.exports()) or "nothing"
            raise CallFailed(error_info(ExportError(
                f"service {self.id} has no export {export!r}; it exports: {listed}")))
        if _fast.serves(self):
            return _fast.serve(self, caller, chain, export, args, kwargs, caller_seq, plain)
        # A replay runs on one thread in journal order; its re-entries need no gate.
        gate = None if self.tape.replaying else self.gate
        if gate is not None:
            gate.enter(chain)
        thread = state
        saved = (thread.service, thread.chain, thread.effect_depth, thread.call_key,
                 thread.callouts)
        decimal_context = None
        try:
            if self.frozen is None and chain != BUILD_CHAIN and self.is_function:
                self.frozen = FrozenGlobals(self.id, self.module.__dict__)
            self.tape.call_in(caller, chain, export, args, kwargs, caller_seq)
            if saved[0] is None:
                enter_from_outside()
            decimal_context = enter_decimal(self)  # restored in the finally below
            thread.service, thread.chain, thread.effect_depth = self, chain, 0
            thread.call_key = None if caller_seq is None else f"{caller}:{caller_seq}"
            thread.callouts = 0
            try:
                function = self.exports()[export]
                call_args, call_kwargs = call_arguments(function, args, kwargs, self)
                if self.frozen is not None:
                    self.frozen.check_intact()
                result = function(*call_args, **call_kwargs)
                if self.frozen is not None:
                    self.frozen.check(self.module.__dict__, export)
                wire = self._result_wire(result, caller, export)
            except Exception as exc:
                info = error_info(exc)
                self.tape.raised(info)
                self._after_call()
                raise CallFailed(info) from None
            self.tape.returned(wire)
            self._after_call()
            return wire
        finally:
            (thread.service, thread.chain, thread.effect_depth, thread.call_key,
             thread.callouts) = saved
            leave_decimal(decimal_context)
            if gate is not None:
                gate.exit()

    def _result_wire(self, result: Any, caller: str, export: str) -> Any:
        """The result's wire form; to a caller outside the service tree, which imports no
        service module, it may hold this service module's own classes."""
        def where() -> str:
            return f"the value returned by {self.id}.{export}"

        if rules.is_service_of_tree(caller, self.id):
            return to_wire(result, where)
        with with_the_outside():
            return to_wire(result, where)

    # -- state digests ---------------------------------------------------------------------

    def _after_call(self) -> None:
        if self._tape.replaying:
            return
        digests = self._digests
        digests.since += 1  # _DigestSchedule.due, inlined: every call pays for this
        if digests.since >= digests.every:
            self.record_digest()
        checkpoints = self.checkpoints
        if checkpoints is None or not self.tape.idle() or not self.gate.alone():
            return
        if self.checkpoint_waits:
            # The last one waited for an answer, and a call came in before it could be
            # taken: it is taken now, so a busy service still takes its checkpoints.
            self.checkpoint_waits = False
            checkpoints.take()
        elif checkpoints.due():
            if state.answers_after:
                self.checkpoint_waits = True
            else:
                checkpoints.take()

    def after_reply(self) -> bool:
        """The answer of the call this thread served has left: take the checkpoint that call
        found due, if no call has come in since (none waits for it then, since it is taken
        where the next call's caller no longer waits for the last one's answer). A call
        inside may be waiting for this very thread to serve it (a chain that comes back), so
        this never waits for the gate: the next call to end takes the checkpoint instead.
        Returns whether one was written."""
        if not self.checkpoint_waits or self.checkpoints is None:
            return False
        gate = self.gate
        if not gate.enter_if_free():
            return False
        try:
            if not self.checkpoint_waits or not self.tape.idle():
                return False
            self.checkpoint_waits = False
            return self.checkpoints.take()
        finally:
            gate.exit()

    def digest_recorded(self, digest: dict[str, list[str]]) -> None:
        """The journal holds ``digest`` whole here (a checkpoint's): the next digest records
        what changed since it."""
        self._digests.last, self._digests.recorded = digest, True

    def state_digest(self) -> dict[str, list[str]]:
        """The digest of the service's globals, taken as an observer: whatever a digest
        touches is never journaled (at recording) or served (at replay)."""
        with observing():
            return state_digest(self.module.__dict__)

    def record_digest(self) -> None:
        """Journal what the service's globals hold now (only the globals that changed); a
        replay compares its state with it. Recording only: a replay checks, it never writes."""
        if self.tape.replaying:
            return
        started = _clock()
        current = self.state_digest()
        last = self._digests.last
        changed = {k: v for k, v in current.items() if last.get(k, [None])[0] != v[0]}
        removed = [k for k in last if k not in current]
        if changed or removed or not self._digests.recorded:
            self.tape.digest(changed, removed)
        self._digests.took(current, _clock() - started)

    # -- the effect seam --------------------------------------------------------------------

    def effect(self, kind: str, args: list[Any], real: Callable[[], T]) -> T:
        """Perform ``real`` as effect ``kind``: journaled, replayed, or just run. The value
        comes back through its wire form, as the journal holds it, so a replay gets the same
        type as a recording."""
        thread = state
        if thread.service is not self or thread.effect_depth:
            return real()
        wire = self.tape.effect(kind, to_wire(args, f"the arguments of effect {kind}"), real)
        value: T = from_wire(wire, self)
        return value

    def patched(self, change_id: str) -> bool:
        """``distdev.patched``: known once the journal has said so; else the tape decides (a
        recorder says yes and journals it, a replayer says what the journal holds here)."""
        if change_id in self.patches:
            return True
        thread = state
        if thread.service is not self or thread.effect_depth:
            return True  # not the service's code asking (an effect's body is not replayed)
        if thread.observing:
            return False  # a debugger's watch: it must not record
        if self.tape.patched(change_id):
            self.patches.add(change_id)
            return True
        return False

    def deprecated_patch(self, change_id: str) -> None:
        thread = state
        if thread.service is self and not thread.effect_depth and not thread.observing:
            self.tape.deprecated_patch(change_id)

    def loaded_source(self, path: str, sha256: str, source: bytes) -> None:
        self.tape.source(BundleFile(path, sha256, source))

    def output(self, stream: str, text: str) -> bool:
        """Record printed or logged text; True if it should also be shown now."""
        return self.tape.output(stream, text)

    def refuse(self, what: str) -> None:
        """Refuse ``what`` if service code (outside an effect) is running on this thread."""
        thread = state
        if thread.service is self and not thread.effect_depth:
            raise DeterminismError(
                f"service {self.id} tried {what}, which replay could not reproduce. Do it in a "
                "function decorated with @distdev.effect (its result is journaled and replayed), "
                "or outside the service."
            )

    # -- build-time declarations -------------------------------------------------------------

    def spawn(self, path: str, name: str | None) -> ServiceProxy:
        """``import_service`` from this service: create (or, replaying, re-find) a child."""
        if self.phase == "runtime":
            raise PhaseError(
                f"import_service({path!r}) was called by {self.id} at runtime; services are "
                "created at build time: call import_service at the top level of the module"
            )
        child_id, rel = self._child(path, name)
        self.tape.spawn(child_id, rel, name)
        if not self.tape.replaying:
            self.router.create_service(child_id, self.id, rel)
        self.children[child_id.rpartition("/")[2]] = rel
        return self.make_proxy(child_id)

    def _child(self, path: str, name: str | None) -> tuple[str, str]:
        if not isinstance(path, str):
            raise ServiceLoadError("import_service needs the path of a .py file, like './billing.py'")
        try:
            rel = rules.resolve_service_path(self.entry, path)
        except rules.ServicePathError as bad:
            raise ServiceLoadError(self._path_problem(bad)) from None
        if not self.tape.replaying and not (self.compartment.root / rel).is_file():
            raise ServiceLoadError(
                f"{self.id} imports service {path!r}, but there is no file "
                f"{self.compartment.root / rel}; check the path (it is relative to {self.entry})"
            )
        local = name if name is not None else rules.default_service_name(rel)
        problem = rules.service_name_problem(local)
        if problem is not None:
            raise ServiceLoadError(f"{problem}; pass name= to import_service({path!r})")
        if local in self.children:
            raise ServiceIdClashError(
                f"{self.id} already has a service named {local!r} (from {self.children[local]}); "
                f"ids must be unique among siblings: pass name= to give this one another id, "
                f"for example import_service({path!r}, name={local + '_2'!r})"
            )
        return rules.child_id(self.id, local), rel

    def _path_problem(self, bad: rules.ServicePathError) -> str:
        if bad.kind == "empty":
            return "import_service needs the path of a .py file, like './billing.py'"
        if bad.kind == "not-py":
            return f"{self.id} imports service {bad.path!r}: a service is a .py file"
        return (f"{self.id} imports service {bad.path!r}, which is outside the application "
                f"folder {self.compartment.root}; keep every service file under the root "
                "service's folder")

    def declare_resource(self, kind: str, name: str, options: dict[str, Any]) -> ServiceProxy:
        """``resources.<kind>(name, ...)`` from this service: a resource node under this one
        in the service tree. The declaration is journaled like an effect (a replay re-finds
        the same resource, creating nothing), and the returned proxy reaches it."""
        if self.phase == "runtime":
            raise PhaseError(
                f"resources.{kind}({name!r}) was called by {self.id} at runtime; resources are "
                "declared at build time: call it at the top level of the module")
        problem = rules.service_name_problem(name) if isinstance(name, str) else \
            f"{name!r} is not a name"
        if problem is not None:
            raise ServiceLoadError(f"{problem}; resources.{kind}(name) takes a name like 'orders'")
        if name in self.children:
            raise ServiceIdClashError(
                f"{self.id} already has a service or resource named {name!r} (from "
                f"{self.children[name]}); ids must be unique among siblings: give the "
                f"{kind} resource another name")
        resource_id: str = self.effect("distdev.resource", [kind, name, options],
                                       lambda: rules.child_id(self.id, name))
        if not self.tape.replaying:
            self.router.create_resource(resource_id, self.id, kind, options)
        self.children[name] = f"resources.{kind}"
        return self.make_proxy(resource_id)

    def reveal(self, resource_id: str, version: int) -> str:
        """A secret's value, from this deployment's store: never journaled (the journal holds
        the reference its ``reveal`` answered), so a replay needs the store too."""
        if self.secrets is None:
            raise DistdevError(
                f"{self.id} reveals secret {resource_id} here, and a secret's value is in no "
                "journal: replay it with `distdev replay --secrets DIR`, DIR being the "
                "deployment's secret store (STATE/secrets) or the build's (OUT/secrets)")
        with in_effect():  # distdev reads its store: nothing the service's journal holds
            return self.secrets(resource_id, version)

    def declare_host(self, declaration: dict[str, Any]) -> None:
        how = f"host.{declaration['kind']}()"
        if self.phase == "runtime":
            raise PhaseError(
                f"{how} was called by {self.id} at runtime; it declares how the service "
                "is hosted, at build time: call it at the top level of the module"
            )
        if self.host is not None and self.host["kind"] != declaration["kind"]:
            raise PhaseError(
                f"{self.id} declared {how} after host.{self.host['kind']}(): a service is "
                "hosted one way; keep one of the two declarations")
        self.host = declaration
        if declaration.get("interleave"):
            self.gate.interleave()
            self.tape = self._tape  # its recorder follows the schedule from here on

    @property
    def is_function(self) -> bool:
        """Whether it is a function (``host.function``): stateless after its build."""
        return self.host is not None and self.host.get("kind") == "function"

    # -- receiving values -------------------------------------------------------------------

    def resolve_class(self, module: str, qualname: str) -> type:
        try:
            return self.compartment.resolve_class(module, qualname)
        except MembraneError:
            raise  # another service's module: the compartment says why
        except Exception as exc:
            raise MembraneError(
                f"service {self.id} received a {module}.{qualname} but cannot load that class "
                f"({exc}); the module that defines it must be importable by {self.id}"
            ) from None

    def make_proxy(self, service_id: str) -> ServiceProxy:
        return make_proxy(service_id, self._held, self)

    def service_files(self) -> set[str]:
        known = {self.entry, *self.children.values(), *self.build_services}
        known = {entry for entry in known if entry.endswith(".py")}  # not the resources
        everyone = getattr(self.router, "services", None)  # an App: the whole application
        if isinstance(everyone, dict):
            known.update(service.entry for service in everyone.values())
        return known

    # -- calling out ------------------------------------------------------------------------

    def call_out(
        self, target: str, export: str, args: list[Any], kwargs: dict[str, Any],
        perform: Callable[[int | str | None], Any],
    ) -> Any:
        """Make an outgoing call through the tape; return the result, rebuilt here."""
        if state.observing:
            raise DistdevError(
                f"calling {target}.{export} from a debugger's watch, hover, console, "
                "breakpoint condition or logpoint is refused: it would act on that service and "
                "write to journals. Step into the code instead, or call it from the program."
            )
        gate = None if self.tape.replaying or not self.gate.held() else self.gate

        def waiting(call_id: int | str | None) -> Any:
            # The gate is let go while the callee works, and taken back before the tape
            # records the outcome: every record is written by the call that holds the gate.
            if gate is None:
                return perform(call_id)
            gate.suspend()
            try:
                return perform(call_id)
            finally:
                gate.resume()

        try:
            wire = self.tape.call_out(target, export, args, kwargs, waiting)
        except CallFailed as failed:
            raise rebuild_exception(failed.info, target, self) from None
        secret = rules.secret_reference(wire, target)
        if secret is not None:
            return self.reveal(*secret)
        return from_wire(wire, self)

    def code_location(self) -> str:
        """``file:line`` of the innermost frame of this service's code on the stack."""
        files = self.compartment.files
        frame: types.FrameType | None = sys._getframe(1)
        while frame is not None:
            if frame.f_code.co_filename in files:
                line = inspect.getframeinfo(frame, context=1).code_context
                text = f" ({line[0].strip()})" if line else ""
                return f"{self._relative(frame.f_code.co_filename)}:{frame.f_lineno}{text}"
            frame = frame.f_back
        return f"{self.entry} (outside its code)"

    def export_location(self, export: str) -> str:
        """``file:line`` of an export's ``def``: where a call's outcome comes from once its
        frames are gone."""
        function = inspect.unwrap(self.exports().get(export) or (lambda: None))
        code = getattr(function, "__code__", None)
        if code is None or code.co_filename not in self.compartment.files:
            return f"{self.entry} (outside its code)"
        return f"{self._relative(code.co_filename)}:{code.co_firstlineno} (def {export}, as it returned)"

    def _relative(self, filename: str) -> str:
        try:
            return Path(filename).relative_to(self.compartment.root).as_posix()
        except ValueError:
            return Path(filename).as_posix()
