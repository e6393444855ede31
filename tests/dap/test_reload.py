"""Hot reload under the debugger (launch option ``watch``): an edited service is reloaded from
its journal, keeping its state, and a breakpoint in the new code stops there."""

from __future__ import annotations

import json
import re
import threading
import urllib.request
from collections.abc import Callable
from pathlib import Path

from dap.dap_client import DapClient, marker
from support import write_files

Start = Callable[..., DapClient]

APP = {
    "app.py": """
        from distdev import host, import_service

        host.process(http=8080)
        counter = import_service("./counter.py")

        def bump(n: int) -> int:
            return counter.add(n)
    """,
    "counter.py": """
        total = 0

        def add(n: int) -> int:
            global total
            total += n
            return total  # @counter-return
    """,
}

PATCHED = """import distdev

total = 0


def add(n: int) -> int:
    global total
    if distdev.patched("add-twice"):
        total += 2 * n
    else:
        total += n
    return total  # @counter-return
"""


def _bump(url: str, n: int, answers: list[int]) -> threading.Thread:
    def post() -> None:
        request = urllib.request.Request(f"{url}/bump", data=json.dumps({"n": n}).encode(),
                                         headers={"Content-Type": "application/json"},
                                         method="POST")
        with urllib.request.urlopen(request, timeout=60) as response:
            answers.append(json.loads(response.read()))

    caller = threading.Thread(target=post, daemon=True)
    caller.start()
    return caller


def test_watch_reloads_an_edited_service_keeping_its_state_and_its_breakpoints(
    adapter: Start, tmp_path: Path,
) -> None:
    folder = write_files(tmp_path / "app", APP)
    counter = folder / "counter.py"
    client = adapter()
    client.start({"app": str(folder / "app.py"), "port": 0, "watch": True,
                  "out": str(tmp_path / "out"), "state": str(tmp_path / "state")},
                 {str(counter): [marker(counter, "counter-return")]})
    served = client.wait_event("output", lambda b: "serving app on" in b.get("output", ""))
    url = re.search(r"http://127\.0\.0\.1:\d+", served["output"])
    assert url is not None
    answers: list[int] = []
    caller = _bump(url.group(0), 1, answers)
    stopped = client.wait_stopped()
    client.request("continue", {"threadId": stopped["threadId"]})
    caller.join(30)
    assert answers == [1]

    counter.write_text(PATCHED)
    client.wait_event("output", lambda b: "reloaded app/counter" in b.get("output", ""),
                      timeout=60)
    assert not client.pending("stopped"), "the reload's replay must not stop at a breakpoint"
    # The editor moves the breakpoint with the edited text, and sends it again.
    client.set_breakpoints(str(counter), [marker(counter, "counter-return")])
    caller = _bump(url.group(0), 1, answers)
    stopped = client.wait_stopped()
    top = client.top(stopped["threadId"])
    assert top["line"] == marker(counter, "counter-return")  # the new code's line
    client.request("continue", {"threadId": stopped["threadId"]})
    caller.join(30)
    assert answers == [1, 3]  # its state (1), the new code (+2)
