"""``distdev dev``: build in-process, keep every service live, serve the ingress, reload on
change.

Every service runs in this one process, so a call between services runs on the caller's thread
(what the debugger's Step Into relies on). The build writes the same output as ``distdev build``;
runtime events are journaled in a state folder of the dev host's own. With ``--watch`` an edit
reloads only the services whose files it changed, each restored by replaying its journal
against its new code (``_reload``): every service keeps its state. An edit the journal does not
replay is reported, and the old code keeps serving.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

from .. import rules
from ..build import App
from ._ingress import Ingress
from ._reload import affected_services, reload_services

__all__ = ["DevHost"]


class DevHost:
    """One development session: an App, its ingress, and (with ``watch``) a file watcher."""

    def __init__(
        self,
        entry: Path,
        *,
        out: Path,
        state: Path,
        port: int | None = None,
        host: str = "127.0.0.1",
        report: Callable[[str], None] = print,
        unwatched: Callable[[], AbstractContextManager[object]] = nullcontext,
    ) -> None:
        """``unwatched``: how to run a reload's replays unseen by a debugger (its breakpoints
        are for the code that serves, not for history replayed to restore a service)."""
        self.entry = entry
        self.unwatched = unwatched
        self.out = out
        self.state = state
        self.port = port
        self.host = host
        self.report = report
        self.app: App | None = None
        self.ingress: Ingress | None = None
        self._changed = threading.Event()
        self._changed_files: set[str] = set()  # app-relative, since the last rebuild
        self._changed_lock = threading.Lock()
        self._stop = threading.Event()

    def start(self) -> None:
        """Build and go live; serve the ingress if the root declared one (or a port is given)."""
        app = self.app = App(self.entry, out=self.out, state=self.state).start()
        root = app.services[app.root_id]
        port = self.port if self.port is not None else (root.host or {}).get("http")
        self.report(f"built {len(app.services)} services into {self.out}")
        if port is not None:
            self.ingress = Ingress(app.service(app.root_id), root.exports(), port, self.host)
            self.ingress.start()
            self.report(f"serving {app.root_id} on {self.ingress.url}  (POST /<export>)")
        else:
            self.report(f"{app.root_id} declares no HTTP ingress; services are live")

    def stop(self) -> None:
        if self.ingress is not None:
            self.ingress.stop()
            self.ingress = None
        if self.app is not None:
            self.app.close()
            self.app = None

    def run(self, watch: bool, on_error: Callable[[BaseException], None]) -> None:
        """Build, then serve until Ctrl-C or SIGTERM; with ``watch``, rebuild whenever a .py
        file changes. The watcher starts before the first build, so no edit is missed."""
        observer: Any = None
        if watch:
            observer = self._watch()
        previous = signal.signal(signal.SIGTERM, lambda *_: self._stop.set())
        try:
            self.start()
            self._serve(on_error)
        finally:
            signal.signal(signal.SIGTERM, previous)
            if observer is not None:
                observer.stop()
                observer.join()
            self.stop()

    def _serve(self, on_error: Callable[[BaseException], None]) -> None:
        try:
            while not self._stop.is_set():
                if self._changed.wait(0.2):
                    self._stop.wait(0.2)  # let an editor finish saving; one reload per burst
                    with self._changed_lock:
                        self._changed.clear()
                        files, self._changed_files = sorted(self._changed_files), set()
                    self._changed_code(files, on_error)
        except KeyboardInterrupt:
            pass
        self.report("stopped")

    def _changed_code(self, files: list[str], on_error: Callable[[BaseException], None]) -> None:
        """Reload the services whose code ``files`` are; build afresh if no build is live (the
        last one failed)."""
        changed = ", ".join(files)
        if self.app is None:
            self.report(f"change detected ({changed}): rebuilding")
            try:
                self.start()
            except Exception as exc:  # a broken edit: report, wait for the next one
                on_error(exc)
            return
        targets = affected_services(self.app, files)
        if not targets:
            self.report(f"change detected ({changed}): no service runs it; nothing to reload")
            return
        self.report(f"change detected ({changed}): reloading {', '.join(targets)} from "
                    f"{'its journal' if len(targets) == 1 else 'their journals'}")
        try:
            with self.unwatched():
                reload = reload_services(self.app, targets)
        except Exception as exc:
            on_error(exc)
            return
        if reload.refused:
            self.report(f"reload refused: the new code does not replay the journal, so the old "
                        f"code keeps serving, with its state:\n{reload.refusal()}\nMake the "
                        f"change compatible (distdev.patched: docs/versioning.md), or restart "
                        f"`distdev dev` to build afresh (its runtime state is then lost)")
            return
        root = self.app.root_id
        if root in targets and self.ingress is not None:
            self.ingress.serve_exports(self.app.services[root].exports())
        self.report(f"reloaded {', '.join(targets)}: state kept, the new code answers")

    def _watch(self) -> Any:
        from watchdog.events import FileSystemEvent, FileSystemEventHandler
        from watchdog.observers import Observer

        root = self.entry.resolve().parent
        relevant = SourceChanges(root, ignored=[self.out, self.state])
        host = self
        observer = Observer()

        class OnChange(FileSystemEventHandler):
            def on_any_event(self, event: FileSystemEvent) -> None:
                if event.event_type in ("opened", "closed_no_write"):
                    return
                path = os.fsdecode(event.src_path)
                if event.is_directory:
                    if event.event_type == "created" and Path(path).parent == root \
                            and relevant.watches(Path(path)):
                        observer.schedule(self, path, recursive=True)  # a new folder of code
                    return
                # A save by rename (editors, sed -i, os.replace) names the file as dest_path.
                paths = [path, os.fsdecode(getattr(event, "dest_path", "") or "")]
                edited = [p for p in paths if p and relevant.matters(p)]
                if edited:
                    with host._changed_lock:
                        host._changed_files.update(relevant.relative(p) for p in edited)
                        host._changed.set()

        # The root alone, then each folder of code in it: the build's own folders are not
        # watched at all (watching them costs a watch per bundle folder, made on every build).
        handler = OnChange()
        observer.schedule(handler, str(root), recursive=False)
        for child in sorted(root.iterdir()):
            if child.is_dir() and relevant.watches(child):
                observer.schedule(handler, str(child), recursive=True)
        observer.start()
        return observer


class SourceChanges:
    """Which paths under an application folder are its code: ``.py`` files in the folders
    ``rules.is_app_folder`` counts as the application's (not the build and state folders)."""

    def __init__(self, root: Path, ignored: list[Path]) -> None:
        self.root = root
        self.ignored = [p.resolve() for p in ignored]

    def relative(self, path: str) -> str:
        return os.path.relpath(os.path.join(self.root, path), self.root)

    def watches(self, folder: Path) -> bool:
        """Whether files in ``folder`` (under the root) can be code."""
        return rules.is_app_folder(self.root, self.root / folder, self.ignored)

    def matters(self, path: str) -> bool:
        if not path.endswith(".py"):
            return False
        return self.watches(Path(os.path.abspath(os.path.join(self.root, path))).parent)
