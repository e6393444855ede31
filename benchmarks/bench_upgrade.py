"""Measurement 11: ``distdev upgrade`` of examples/shop holding about 10k journal events, beside
a restart of the same deployment.

``examples/shop`` is copied, built and brought up with ``distdev up --detach --port 0 --no-sync``
(the local engine, a process per service); checkouts through its ingress (``POST /place_order``,
which reaches every service) run until its journals hold ``events`` events in all. Each
repetition then makes a compatible change to every service's module (a new export), builds it,
and times the whole ``distdev upgrade NEW --state STATE`` command: the gate replaying every
changed journal against the new code, ``down``, the new code written into the journals, ``up``
with every service restored from its journal. The baseline is what any restart costs: ``distdev
down`` then ``distdev up`` of the deployment's current build, timed in the same repetition.

The ratio says what the gate adds to the restart the upgrade needs anyway (each changed journal
is replayed once to check it, once to restore it). Nothing is asserted. ``python
benchmarks/bench_upgrade.py [--quick]`` runs it alone.
"""

from __future__ import annotations

import http.client
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from bench_util import Row, Settings, progress  # noqa: E402

SHOP = HERE.parent / "examples" / "shop"
FULL_EVENTS, QUICK_EVENTS = 10_000, 2_000
REPS, QUICK_REPS = 3, 1


def _cli() -> str:
    return str(Path(sys.executable).with_name("distdev"))


def _run(*argv: str) -> str:
    done = subprocess.run([_cli(), *argv], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"distdev {' '.join(argv)} failed ({done.returncode}):\n"
                           f"{done.stdout}{done.stderr}")
    return done.stdout


def _timed(*argv: str) -> float:
    started = time.perf_counter()
    _run(*argv)
    return time.perf_counter() - started


def _events(state: Path) -> tuple[int, int]:
    """(services, events in all their journals), as ``distdev status`` counts them."""
    report = json.loads(_run("status", "--state", str(state), "--json"))
    return len(report["services"]), sum(row["events"] or 0 for row in report["services"])


def _port(state: Path) -> int:
    report = json.loads(_run("status", "--state", str(state), "--json"))
    return next(int(row["http"]) for row in report["services"] if row["id"] == "app")


def _fill(state: Path, events: int) -> int:
    """Check out through the ingress until the journals hold ``events`` events."""
    connection = http.client.HTTPConnection("127.0.0.1", _port(state), timeout=120)
    body = json.dumps({"user": "bench", "item": "book", "quantity": 1}).encode()
    try:
        while (held := _events(state)[1]) < events:
            for _ in range(50):
                connection.request("POST", "/place_order", body,
                                   {"Content-Type": "application/json"})
                response = connection.getresponse()
                payload = response.read()
                if response.status != 200:
                    raise RuntimeError(f"POST /place_order: {response.status} {payload[:200]!r}")
    finally:
        connection.close()
    return held


SERVICE_MODULES = ("app.py", "catalog.py", "billing/billing.py", "billing/ledger.py",
                   "orders/orders.py")


def _version(source: Path, out: Path, version: int) -> None:
    """A compatible change to every service's module (a new function); then build it."""
    for rel in SERVICE_MODULES:
        module = source / rel
        module.write_text(module.read_text()
                          + f"\n\ndef version_{version}() -> int:\n    return {version}\n")
    _run("build", str(source / "app.py"), "-o", str(out))


def run_upgrades(tmp: Path, events: int, reps: int) -> tuple[int, int, list[float], list[float]]:
    """(services, events, upgrade seconds, restart seconds) per repetition."""
    source = tmp / "shop"
    shutil.copytree(SHOP, source, ignore=shutil.ignore_patterns("__pycache__"))
    out, state = tmp / "out-1", tmp / "state"
    _run("build", str(source / "app.py"), "-o", str(out))
    _run("up", str(out), "--state", str(state), "--detach", "--port", "0", "--no-sync")
    upgrades, restarts = [], []
    try:
        progress(f"upgrade: filling the shop's journals to {events} events")
        held = _fill(state, events)
        services = _events(state)[0]
        for rep in range(reps):
            progress(f"upgrade: repetition {rep + 1} of {reps}")
            restarts.append(_timed("down", "--state", str(state))
                            + _timed("up", str(out), "--state", str(state), "--detach",
                                     "--port", str(_port_of(state)), "--no-sync"))
            out = tmp / f"out-{rep + 2}"
            _version(source, out, rep + 2)
            upgrades.append(_timed("upgrade", str(out), "--state", str(state), "--no-sync"))
    finally:
        subprocess.run([_cli(), "down", "--state", str(state)], capture_output=True, check=False)
    return services, held, upgrades, restarts


def _port_of(state: Path) -> int:
    """The ingress port the deployment file recorded (the deployment is stopped)."""
    deployment = json.loads((state / "deployment.json").read_text())
    return int(deployment["services"][deployment["root"]]["http"])


def measure(tmp: Path, settings: Settings) -> list[Row]:
    tmp.mkdir(parents=True, exist_ok=True)
    events = QUICK_EVENTS if settings.quick else FULL_EVENTS
    services, held, upgrades, restarts = run_upgrades(
        tmp, events, QUICK_REPS if settings.quick else REPS)
    return [Row(
        key="upgrade.shop", title=f"upgrade of the shop ({services} services, {held} events)",
        unit="s", distdev=statistics.median(upgrades), baseline_name="down + up (a restart)",
        baseline=statistics.median(restarts), higher_is_better=False,
        note=(f"every service changed (a new export); the whole `distdev upgrade` command: "
              f"check every journal, down, write the new code, up; median of {len(upgrades)}"))]


def main(argv: list[str]) -> int:
    import tempfile

    events = QUICK_EVENTS if "--quick" in argv else FULL_EVENTS
    with tempfile.TemporaryDirectory(prefix="distdev-bench-upgrade-") as tmp:
        services, held, upgrades, restarts = run_upgrades(
            Path(tmp), events, QUICK_REPS if "--quick" in argv else REPS)
    print(f"shop, {services} services, {held} events: upgrade "
          f"{statistics.median(upgrades):.2f} s, restart {statistics.median(restarts):.2f} s "
          f"(each: {', '.join(f'{u:.2f}/{r:.2f}' for u, r in zip(upgrades, restarts))})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
