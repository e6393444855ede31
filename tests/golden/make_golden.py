"""Write the golden journals of the current journal format (once per format version).

    PYTHONHASHSEED=0 python tests/golden/make_golden.py

Each later distdev must read these files exactly as they are: they are never regenerated. The
application is tests/golden/v<N>/app; the journals go to tests/golden/v<N>/<service>.cbor with
what a reader must find in them (events by kind, restored state) in expected.json.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import distdev
from distdev.journal import FORMAT_VERSION

HERE = Path(__file__).resolve().parent


def main() -> int:
    folder = HERE / f"v{FORMAT_VERSION}"
    if any(folder.glob("*.cbor")):
        print(f"{folder} already has golden journals; they are never rewritten", file=sys.stderr)
        return 1
    os.environ["GOLDEN_REGION"] = "north"
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "app"
        shutil.copytree(folder / "app", work)
        app = distdev.App(work / "app.py", out=Path(tmp) / "out", state=Path(tmp) / "state")
        app.start()
        proxy = app.service("app")
        proxy.place(1200)
        proxy.place(300)
        proxy.refund(50)
        proxy.report()
        if "hold" in app.services["app"].exports():
            _interleave(proxy, Path(tmp) / "gates")
        journals = {sid: app.journal(sid) for sid in app.services}
        states = {sid: app.state(sid) for sid in app.services}
        app.close()
        if FORMAT_VERSION >= 4:
            for journal in journals.values():
                _checkpoint(journal)
        expected = {}
        for sid, journal in journals.items():
            name = sid.replace("/", "__") + ".cbor"
            shutil.copyfile(journal, folder / name)
            events = distdev.read_journal(folder / name).events
            expected[name] = {"service": sid,
                              "kinds": [e.__struct_config__.tag for e in events],
                              "state": states[sid]}
    (folder / "expected.json").write_text(json.dumps(expected, indent=2) + "\n")
    print(f"wrote {len(journals)} golden journals into {folder}")
    return 0


class _Alone:
    """The transport of a service restored on its own: it calls nobody."""

    def send(self, *args: Any) -> Any:
        raise AssertionError("the golden journal's checkpoint makes no call")

    def exports(self, target: str) -> None:
        return None


def _checkpoint(journal: Path) -> None:
    """Format 4's ``checkpoint`` record: the service restored live from its journal, as a host
    restores it, writes one where it stands."""
    from distdev.engines._live import go_live

    live = go_live(journal, _Alone(), durable=False, app_files=None, log=print)
    assert live.checkpoints is not None and live.checkpoints.take(), journal
    live.writer.close()
    live.service.compartment.unload()


def _interleave(proxy: Any, gates: Path) -> None:
    """Calls that end out of the order they began (format 3's ``switch`` records): hold a and b
    in the two waiters, place an order while both wait, then let a finish, then b."""
    gates.mkdir()
    threads = []
    for name, via in (("a", "left"), ("b", "right")):
        thread = threading.Thread(target=proxy.hold, args=(str(gates), name, via))
        thread.start()
        threads.append(thread)
        while not (gates / f"{name}.waiting").exists():
            time.sleep(0.01)
    proxy.place(700)
    for name, thread in zip("ab", threads):
        (gates / name).touch()
        thread.join()


if __name__ == "__main__":
    sys.exit(main())
