"""Measurement 7 (``ray``): a call round trip on the Ray engine beside the local engine, and the
transport the Ray engine uses between services beside Ray's own actor handles, in one run.

A two-service app is built once (``app.relay(data)`` calls ``app/echo.echo(data)``, 16 bytes),
then deployed twice, each in its own state folder:

* ``local engine``: ``distdev up --detach --tcp`` (loopback TCP, durable journals);
* ``Ray engine``: ``distdev deploy --engine ray`` without ``--address``, which starts a local
  Ray instance (the timing of that deploy is a row of its own, beside ``up``'s).

The client is this process: ``distdev.engines.Connection`` calling ``app.relay``: two
hops (client -> app -> app/echo), each journaled durably. The third system is what the Ray
engine could have used between services instead of the local engine's socket transport: two
plain Ray actors in the same Ray instance, ``A.relay(data)`` doing ``ray.get(B.echo.remote(data))``
(a nested call through actor handles, max_concurrency=2, no journal), called by this process
(a Ray driver) with ``ray.get(a.relay.remote(data))``. Per repetition each system makes ``n``
sequential calls, each timed; the systems take turns; figures are medians over repetitions.

Ray must not listen beyond loopback here, so the measuring runs as a child process in a fresh
network namespace with only loopback up (``unshare -n``, or ``unshare -rn``), which writes its
figures to a JSON file. Where no namespace can be made, the rows say so. Deployments and the
Ray instance are always taken down. Nothing is asserted.

Standalone: ``.venv/bin/python benchmarks/bench_ray.py [--quick]`` prints the table.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from bench_util import FULL, QUICK, Row, Settings, progress, write_app  # noqa: E402

PAYLOAD = b"x" * 16
APP_FILES = {
    "app.py": '''
        from distdev import import_service

        echo = import_service("./echo.py")

        def relay(data: bytes) -> bytes:
            return echo.echo(data)
    ''',
    "echo.py": '''
        def echo(data: bytes) -> bytes:
            return data
    ''',
}
LOCAL, RAY, RAY_NO_SYNC = "local engine (TCP)", "Ray engine", "Ray engine --no-sync"
HANDLES = "Ray actor handles"


# -- in the namespace -----------------------------------------------------------------------

def _distdev(*args: str | Path) -> float:
    """Run the console script; return its wall time."""
    start = time.perf_counter()
    done = subprocess.run([str(Path(sys.executable).with_name("distdev")), *map(str, args)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"distdev {' '.join(map(str, args))} failed:\n{done.stdout}"
                           f"{done.stderr}")
    return time.perf_counter() - start


def _connection_call(address: str, secret: bytes) -> tuple[Callable[[], Any], Callable[[], None]]:
    from distdev.engines import Connection

    connection = Connection(address, secret, "bench", 60.0)
    return (lambda: connection.call("bench", "bench-chain", None, "relay", [PAYLOAD], {}),
            connection.close)


def _handles_call(ray: Any) -> Callable[[], Any]:
    @ray.remote(num_cpus=0, max_concurrency=2)
    class Echo:
        def echo(self, data: bytes) -> bytes:
            return data

    @ray.remote(num_cpus=0, max_concurrency=2)
    class Relay:
        def __init__(self, echo: Any) -> None:
            self.echo = echo

        def relay(self, data: bytes) -> bytes:
            return ray.get(self.echo.echo.remote(data))

    relay = Relay.remote(Echo.remote())  # type: ignore[attr-defined]
    return lambda: ray.get(relay.relay.remote(PAYLOAD))


def _round_trips(call: Callable[[], Any], n: int) -> float:
    times = []
    gc.collect()
    for _ in range(n):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def inner(work: Path, quick: bool, result_file: Path) -> None:
    """Deploy on both engines, time the calls, write the figures to ``result_file``."""
    from distdev.engines.local import Deployment
    from distdev.engines.ray import _cluster as cluster
    from distdev.engines.ray._layout import AddressBook, RayDeployment

    n, reps = (100, 3) if quick else (400, 5)
    write_app(work / "app", APP_FILES)
    _distdev("build", work / "app" / "app.py", "-o", work / "out")
    figures: dict[str, Any] = {"calls": n, "reps": reps}
    closers: list[Callable[[], None]] = []
    try:
        progress("ray: distdev up --detach --tcp")
        figures["deploy " + LOCAL] = _distdev("up", work / "out", "--state", work / "local",
                                              "--detach", "--tcp")
        local = Deployment.load(work / "local")
        progress("ray: distdev deploy --engine ray (starts a local Ray instance)")
        figures["deploy " + RAY] = _distdev("deploy", work / "out", "--engine", "ray",
                                            "--state", work / "ray")
        deployment = RayDeployment.load(work / "ray")
        progress("ray: distdev deploy --engine ray --address (the same instance) --no-sync")
        _distdev("deploy", work / "out", "--engine", "ray", "--address", deployment.address,
                 "--state", work / "ray-no-sync", "--no-sync")
        calls: dict[str, Callable[[], Any]] = {}
        calls[LOCAL], close = _connection_call(local.services["app"].address, local.secret())
        closers.append(close)
        for name, state in ((RAY, work / "ray"), (RAY_NO_SYNC, work / "ray-no-sync")):
            on_ray = RayDeployment.load(state)
            address = AddressBook(state, on_ray.services)["app"]
            calls[name], close = _connection_call(address, on_ray.secret())
            closers.append(close)
        ray = cluster.connect(deployment.address, "distdev-bench")
        closers.append(ray.shutdown)
        calls[HANDLES] = _handles_call(ray)
        for call in calls.values():  # warm up connections, workers, caches
            for _ in range(20):
                call()
        rtt: dict[str, list[float]] = {name: [] for name in calls}
        for rep in range(reps):
            progress(f"ray: repetition {rep + 1}/{reps}")
            for name, call in calls.items():
                rtt[name].append(_round_trips(call, n))
        figures["rtt"] = {name: statistics.median(values) for name, values in rtt.items()}
    finally:
        for close in reversed(closers):
            close()
        for state, engine in ((work / "ray-no-sync", "ray"), (work / "ray", "ray"),
                              (work / "local", "local")):
            if state.exists():
                subprocess.run([str(Path(sys.executable).with_name("distdev")), "down",
                                "--engine", engine, "--state", str(state)],
                               capture_output=True, check=False)
    result_file.write_text(json.dumps(figures))


# -- outside: the namespace, and the rows -----------------------------------------------------

def _loopback_only() -> bool:
    return [name for _, name in socket.if_nameindex()] == ["lo"]


def _namespace_command() -> list[str] | None:
    if _loopback_only():
        return []
    if shutil.which("ip") is None:
        return None
    for unshare in (["unshare", "-n"], ["unshare", "-rn"]):
        if subprocess.run([*unshare, "true"], capture_output=True, check=False).returncode == 0:
            return unshare
    return None


def _rows(figures: dict[str, Any] | None, why: str = "") -> list[Row]:
    missing = f"not measured: {why}"
    rtt = (figures or {}).get("rtt", {})
    note = (f"median of {figures['reps']} x {figures['calls']} sequential calls" if figures
            else why)
    return [
        Row("ray.rtt", "call round trip, client -> app -> app/echo: Ray engine", "s",
            rtt.get(RAY), LOCAL, rtt.get(LOCAL), higher_is_better=False,
            note=f"both journal durably and call between services over distdev's socket "
                 f"transport; {note}", distdev_text=missing, baseline_text=missing),
        Row("ray.transport", "the same two hops: Ray engine --no-sync (socket transport)", "s",
            rtt.get(RAY_NO_SYNC), HANDLES, rtt.get(HANDLES), higher_is_better=False,
            note="journals written but not fdatasync'd, against the alternative transport: "
                 "nested ray.get through actor handles (no journal at all); why the Ray engine "
                 "calls between services over sockets",
            distdev_text=missing, baseline_text=missing),
        Row("ray.deploy", "deploy to serving: distdev deploy --engine ray (local instance)",
            "s", (figures or {}).get("deploy " + RAY), "distdev up --detach --tcp",
            (figures or {}).get("deploy " + LOCAL), higher_is_better=False,
            note="the Ray deploy includes starting a local Ray instance",
            distdev_text=missing, baseline_text=missing),
    ]


def measure(work: Path, settings: Settings) -> list[Row]:
    """Run ``inner`` in a loopback-only network namespace; its figures as rows."""
    work.mkdir(parents=True, exist_ok=True)
    try:
        import ray  # noqa: F401
    except ImportError:
        return _rows(None, "Ray is not installed (pip install 'distdev[ray]')")
    prefix = _namespace_command()
    if prefix is None:
        return _rows(None, "no loopback-only network namespace could be made (unshare -n)")
    result = work / "ray-figures.json"
    inner_cmd = [sys.executable, str(Path(__file__).resolve()), "--inner", str(work),
                 "--result", str(result)] + (["--quick"] if settings.quick else [])
    if prefix:
        line = " ".join(f"'{part}'" for part in inner_cmd)
        command = [*prefix, "sh", "-c", f"ip link set lo up && exec {line}"]
    else:
        command = inner_cmd
    env = {**os.environ, "PYTHONHASHSEED": os.environ.get("PYTHONHASHSEED") or "0"}
    done = subprocess.run(command, env=env, check=False)
    if done.returncode != 0 or not result.exists():
        return _rows(None, f"the measuring process failed ({done.returncode})")
    return _rows(json.loads(result.read_text()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--inner", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.inner is not None:
        inner(args.inner, args.quick, args.result)
        return 0
    import tempfile

    import bench_report

    settings = QUICK if args.quick else FULL
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="distdev-bench-") as tmp:
        rows = measure(Path(tmp) / "ray", settings)
    bench_report.print_table(rows, bench_report.environment(settings, time.perf_counter() - start))
    return 0


if __name__ == "__main__":
    sys.exit(main())
