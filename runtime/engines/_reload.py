"""Hot reload that keeps state: a service of a live ``App`` swapped for its new code, restored by
replaying its own journal against it.

``distdev dev --watch`` calls ``reload_services`` with the services whose files an edit changed.
Each is checked first, all of them before any is swapped (``check_journal``, the gate of
``distdev check`` and ``distdev upgrade``): a divergence is reported with the event, what the
journal holds, what the new code did and where, and where the journal's own code was, and every
service keeps its old code. Otherwise each is replayed against the application's folder, its
journal gets the new files as source records (so it replays alone with the code it runs now,
as an upgraded state journal does), and the ``App`` routes its calls to the new instance. The
other services are not touched: their state, and their journals, go on as they were.

While a service is reloaded its call gate is held, so no call runs in it between the journal's
last record and the swap. A call that was already waiting for the old instance's gate then
fails, saying to call again (``_Replaced``): it would otherwise run the old code after the new
code's records.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from pathlib import Path
from typing import Any

from ..build import App
from ..compartment import state as thread_state
from ..errors import ServiceUnavailableError
from ..journal import BundleFile, read_journal
from ..replayer import Verdict, bundle_files, check_journal, replay
from ..service import Detached, Recorder, Service

__all__ = ["Reload", "affected_services", "reload_services"]

_RELOAD_CHAIN = "distdev-reload"


@dataclasses.dataclass
class Reload:
    """What a reload did: the services given new code, or the verdicts that refused it."""

    reloaded: list[str]
    refused: dict[str, Verdict]

    def refusal(self) -> str:
        lines = []
        for service_id, v in self.refused.items():
            if v.result == "diverged":
                line = (f"{service_id}: at event {v.seq} the journal holds {v.expected} "
                        f"(its code was at {v.journal_location or 'an unknown line'}); the new "
                        f"code {v.actual} at {v.location}")
            else:
                line = f"{service_id}: {v.message}"
            lines.append(line)
        return "\n".join(lines)


def affected_services(app: App, files: Collection[str]) -> list[str]:
    """The services whose code includes one of ``files`` (paths relative to the app), in the
    order the build created them."""
    changed = set(files)
    return [sid for sid, service in app.services.items()
            if changed & {path for path, _, _ in service.compartment.bundle_files()}]


def reload_services(app: App, service_ids: list[str]) -> Reload:
    """Give each of ``service_ids`` its new code from the app's folder, keeping its state; all
    or none."""
    olds = [app.services[sid] for sid in service_ids]
    for old in olds:
        old.gate.enter(_RELOAD_CHAIN)
    try:
        app.flush()
        journals = {sid: app.journal(sid) for sid in service_ids}
        verdicts = {sid: check_journal(journals[sid], app.root) for sid in service_ids}
        refused = {sid: v for sid, v in verdicts.items() if v.result != "compatible"}
        if refused:
            return Reload([], refused)
        for sid, old in zip(service_ids, olds):
            _swap(app, sid, journals[sid])
            old.tape = _Replaced(sid)
    finally:
        for old in olds:
            old.gate.exit()
    for old in olds:
        old.compartment.unload()
    return Reload(service_ids, {})


def _swap(app: App, service_id: str, journal: Path) -> None:
    """Replay the service's journal against the app's folder and route its calls to the new
    instance, which journals on from where the old one stopped."""
    contents = read_journal(journal)
    restored = replay(contents, source=app.root)
    writer = app._writers[service_id]
    service = restored.service
    service.tape = Recorder(writer)
    service.phase = "runtime"
    carried = bundle_files(contents)
    for path, digest, source in service.compartment.bundle_files():
        if carried.get(path, ("",))[0] != digest:
            service.tape.source(BundleFile(path, digest, source))
    writer.flush()
    restored.connect(_InApp(app), after_call=app.flush)
    app.services[service_id] = service


class _Replaced(Detached):
    """The tape of an instance a reload replaced: a call that waited for it is refused (it
    writes nothing, runs nothing); the app routes the next one to the new instance."""

    def __init__(self, service_id: str) -> None:
        super().__init__()
        self.service_id = service_id

    def call_in(self, caller: str, chain: str, export: str, args: list[Any],
                kwargs: dict[str, Any], caller_seq: int | str | None = None) -> None:
        raise ServiceUnavailableError(
            f"{self.service_id} was reloaded with new code while this call to {export} waited "
            "for it; call it again (the new code answers)")


class _InApp:
    """The transport of a reloaded service: its calls go to the app's services in this
    process, on the caller's thread, as every call in an ``App`` does."""

    def __init__(self, app: App) -> None:
        self.app = app

    def send(self, caller: Service, target: str, export: str, args: list[Any],
             kwargs: dict[str, Any], call_seq: int | str | None) -> Any:
        callee = self.app.services[target]
        chain = thread_state.chain or self.app._new_chain()
        return callee.handle_call(caller.id, chain, export, args, kwargs)

    def exports(self, target: str) -> Collection[str] | None:
        return self.app.exports(target)

