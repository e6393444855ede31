"""The local engine's host of a function (``host.function(max_instances=N)``): one address, up
to N processes.

The supervisor starts this process in a function's place (``python -P -m
distdev.engines.local._pool``, the arguments of a service process). It answers at the
function's address and, for a function root, on its ingress port, and hands each call to an
instance (``engines._dispatch``, which says how and why). Its instances are service processes of
the function (``_host --instance N``), each restored from the function's build journal into a
journal of its own and listening on an address of its own beside the function's; their output
reaches the function's log prefixed with their number.

``STATE/<id>/instances.json`` says which instances run, for ``distdev status``, and for
``distdev down`` and the next pool, which stop whatever a pool that died left running.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Any

from ..._spawn import python_module
from ...build import ServiceSpec
from ...errors import DistdevError
from .._dispatch import POOL_FILE, Dispatcher, Instance, read_status, status_writer
from .._keys import read_key_file
from ._deployment import READY, Deployment, log_line, says_ready

__all__ = ["POOL_FILE", "function_instances", "pool_status", "leftover_instances", "main"]

_INSTANCE_MODULE = b"distdev.engines.local._host"


def function_instances(spec: ServiceSpec) -> int | None:
    """How many instances a service may have if it is a function (None: it is not)."""
    host = spec.host
    return host.instances if host is not None and host.kind == "function" else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ProcessLauncher:
    """Instances as processes of this machine, started with the pool's own arguments."""

    def __init__(self, deployment: Deployment, service_id: str, key_file: Path,
                 durable: bool, log: Any) -> None:
        self.deployment = deployment
        self.service_id = service_id
        self.entry = deployment.services[service_id]
        self.key_file = key_file
        self.durable = durable
        self.log = log

    def _address(self, number: int) -> str:
        """An instance's private address beside its function's: the same kind of socket."""
        if self.entry.address.startswith("unix:"):
            return self.entry.address.removesuffix(".sock") + f".i{number}.sock"
        return f"tcp:127.0.0.1:{_free_port()}"

    def launch(self, dispatcher: Dispatcher, instance: Instance) -> None:
        address = self._address(instance.number)
        http = None if self.entry.http is None else ("127.0.0.1", _free_port())
        command = python_module(
            "distdev.engines.local._host", "--state", self.deployment.state, "--id",
            self.service_id, "--keys", str(self.key_file), "--instance", str(instance.number),
            "--journal", str(instance.journal), "--address", address,
            *(["--http", str(http[1])] if http is not None else []),
            *([] if self.durable else ["--no-sync"]))
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True, stdin=subprocess.DEVNULL)
        instance.handle, instance.pid = process, process.pid
        threading.Thread(target=self._relay, args=(dispatcher, instance, process, address, http),
                         daemon=True, name=f"distdev-instance-{instance.number}").start()

    def _relay(self, dispatcher: Dispatcher, instance: Instance,
               process: subprocess.Popen[str], address: str, http: Any) -> None:
        """Relay an instance's output, prefixed with its number; say when it is ready and
        when it has exited."""
        stream: IO[str] | None = process.stdout
        assert stream is not None
        last = ""
        for line in stream:
            ready, line = says_ready(line)
            if ready:
                dispatcher.ready(instance, address, http)
                if not line:
                    continue
            last = line.strip() or last
            self.log(f"instance {instance.number}: {line.rstrip()}")
        code = process.wait()
        dispatcher.exited(instance, f"exit code {code}" + (f" ({last})" if last else ""))

    def terminate(self, instance: Instance) -> None:
        process: subprocess.Popen[str] | None = instance.handle
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)

    def wait(self, instances: list[Instance], timeout: float) -> None:
        for instance in instances:
            process: subprocess.Popen[str] | None = instance.handle
            if process is None:
                continue
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


# -- for status and down -----------------------------------------------------------------------


def pool_status(state: Path, service_id: str) -> dict[str, Any] | None:
    """What ``instances.json`` says of a function's instances, each with whether it is alive."""
    report = read_status(Path(state) / service_id)
    if report is None:
        return None
    for row in report.get("instances", []):
        row["alive"] = _runs_instance(row.get("pid"))
    return report


def leftover_instances(state: Path, service_id: str) -> list[int]:
    """Pids of instance processes a pool of ``service_id`` started that still run."""
    report = pool_status(state, service_id)
    if report is None:
        return []
    return [row["pid"] for row in report.get("instances", []) if row["alive"]]


def _runs_instance(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        state = Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0]
    except (OSError, IndexError):
        return False
    return _INSTANCE_MODULE in cmdline and b"--instance" in cmdline and state != "Z"


# -- the process -------------------------------------------------------------------------------


def _dispatcher(state: Path, service_id: str, key_file: Path, durable: bool) -> Dispatcher:
    deployment = Deployment.load(state)
    entry = deployment.services[service_id]
    for pid in leftover_instances(state, service_id):
        os.kill(pid, signal.SIGKILL)
        log_line(f"stopped instance process {pid}, left by a pool that is gone")
    max_instances = entry.max_instances or 1
    return Dispatcher(
        service_id, read_key_file(key_file, service_id), max_instances,
        Path(deployment.state) / service_id, deployment.journal(service_id),
        ProcessLauncher(deployment, service_id, key_file, durable, log_line), log_line,
        on_change=status_writer(Path(deployment.state) / service_id, max_instances))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m distdev.engines.local._pool")
    parser.add_argument("--state", type=Path, required=True)
    parser.add_argument("--id", required=True)
    parser.add_argument("--keys", type=Path, required=True, help="the function's key file")
    parser.add_argument("--no-sync", action="store_true", help="journal without fdatasync")
    args = parser.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def cannot_go_on(why: str) -> None:  # its supervisor restarts it, as any that cannot start
        log_line(f"error: {why}")
        stop.set()

    try:
        dispatcher = _dispatcher(args.state, args.id, args.keys, not args.no_sync)
        entry = Deployment.load(args.state).services[args.id]
        try:
            dispatcher.start(entry.address, None if entry.http is None
                             else ("127.0.0.1", entry.http),
                             on_failure=cannot_go_on)
        except BaseException:
            dispatcher.stop()
            raise
    except DistdevError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 1
    log_line(READY)
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    dispatcher.stop()
    return 1 if dispatcher.failed is not None else 0


if __name__ == "__main__":
    raise SystemExit(main())
