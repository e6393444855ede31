"""``distdev dev``: build in-process, keep every service live, serve the ingress, rebuild on
change.

Every service runs in this one process, so a call between services runs on the caller's thread
(what the debugger's Step Into relies on). The build writes the same output as ``distdev build``;
runtime events are journaled in a state folder of the dev host's own.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any, Callable

from ._app import App
from ._http import Ingress

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
    ) -> None:
        self.entry = entry
        self.out = out
        self.state = state
        self.port = port
        self.host = host
        self.report = report
        self.app: App | None = None
        self.ingress: Ingress | None = None
        self._changed = threading.Event()
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
                    self._stop.wait(0.2)  # let an editor finish saving; one rebuild per burst
                    self._changed.clear()
                    self.report("change detected: rebuilding")
                    self.stop()
                    try:
                        self.start()
                    except Exception as exc:  # a broken edit: report, wait for the next one
                        on_error(exc)
        except KeyboardInterrupt:
            pass
        self.report("stopped")

    def _watch(self) -> Any:
        from watchdog.events import FileSystemEvent, FileSystemEventHandler
        from watchdog.observers import Observer

        out = str(self.out.resolve())
        state = str(self.state.resolve())
        changed = self._changed

        class OnChange(FileSystemEventHandler):
            def on_any_event(self, event: FileSystemEvent) -> None:
                path = str(event.src_path)
                if event.event_type in ("opened", "closed_no_write"):
                    return
                if path.endswith(".py") and not path.startswith((out, state)):
                    changed.set()

        observer = Observer()
        observer.schedule(OnChange(), str(self.entry.parent), recursive=True)
        observer.start()
        return observer
