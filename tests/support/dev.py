"""`distdev dev` in the background, as a user starts it, for tests."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from . import DISTDEV


class DevServer:
    """``distdev dev`` in the background; ``work=None`` keeps its default output folders, which
    lie inside the app when it runs from the app's folder (``cwd``)."""

    def __init__(self, app: Path, work: Path | None, *extra: str, cwd: Path | None = None) -> None:
        self.work = work
        env = {k: v for k, v in os.environ.items() if k != "PYTHONHASHSEED"}
        folders = [] if work is None else ["-o", str(work / "out"), "--state", str(work / "state")]
        self.process = subprocess.Popen(
            [str(DISTDEV), "dev", str(app), "--port", "0", *folders, *extra],
            stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=cwd,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.url = self.wait_for(r"serving app on (http://127\.0\.0\.1:\d+)")

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self._queue.put(line)
        self._queue.put("")

    def wait_for(self, pattern: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            if not line:
                raise AssertionError("distdev dev exited:\n" + "".join(self.lines))
            self.lines.append(line)
            found = re.search(pattern, line)
            if found:
                return found.group(1) if found.groups() else line
        raise AssertionError(f"no {pattern!r} within {timeout} s in:\n" + "".join(self.lines))

    def post(self, export: str, body: bytes | dict[str, Any]) -> tuple[int, Any]:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.url}/{export}", data=data, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def stop(self) -> tuple[int, str]:
        self.process.send_signal(signal.SIGTERM)  # SIGINT is ignored under a background shell
        code = self.process.wait(timeout=30)
        rest = []
        while (line := self._queue.get(timeout=10)) != "":
            rest.append(line)
        return code, "".join(self.lines + rest)
