"""Reaching Ray: the optional import, the settings every distdev Ray instance runs with, and a
local instance kept alive by a background process (``head``).

Ray is an optional extra. Nothing outside this package imports it, and every entry point of the
Ray engine calls ``require_ray`` first, so that without it ``--engine ray`` says how to install it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import ModuleType

from ..._spawn import python_module
from ...errors import DistdevError

INSTALL = "pip install 'distdev[ray]'"

SETTINGS_ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",  # never report usage to anyone
    "RAY_AUTH_MODE": "disabled",  # else Ray writes a token to ~/.ray
}
"""Environment for every process distdev starts or drives Ray from."""

START_TIMEOUT = 120.0
# Ray puts Unix sockets at TEMP/session_<date>_<pid>/sockets/plasma_store; AF_UNIX paths stop at
# 107 bytes, and the part after TEMP takes about 65.
_TEMP_DIR_MAX = 40


def require_ray() -> ModuleType:
    """Import Ray, or say how to install it."""
    for key, value in SETTINGS_ENV.items():
        os.environ.setdefault(key, value)
    try:
        import ray
    except ImportError as exc:
        raise DistdevError(
            f"the ray engine needs Ray, which is not installed here ({exc}). Install it with: "
            f"{INSTALL}"
        ) from None
    return ray


def check_ray_installed() -> None:
    """Say how to install Ray if it is missing, without importing it (about a second): for
    the commands that only read the state folder and talk to the services."""
    import importlib.util

    if importlib.util.find_spec("ray") is None:
        raise DistdevError(f"the ray engine needs Ray, which is not installed here. Install it "
                           f"with: {INSTALL}")


def namespace_for(state: Path) -> str:
    """The Ray namespace of the deployment in ``state``: actor names are unique within it."""
    return "distdev-" + hashlib.sha256(str(state.resolve()).encode()).hexdigest()[:12]


def connect(address: str, namespace: str) -> ModuleType:
    """Connect this process to the Ray cluster at ``address`` as a driver."""
    ray = require_ray()
    try:
        ray.init(address=address, namespace=namespace, log_to_driver=False,
                 logging_level=logging.WARNING, configure_logging=False)
    except ConnectionError as exc:
        raise DistdevError(f"cannot reach the Ray cluster at {address} ({exc}); is it running "
                           "(`ray status`), and is --address right?") from None
    return ray


def temp_dir_for(state: Path) -> Path:
    """Ray's temporary folder for a local instance: inside the state folder when that path is
    short enough for Ray's socket paths, else a short folder named after it under /tmp."""
    inside = state / "ray"
    if len(str(inside)) <= _TEMP_DIR_MAX:
        return inside
    digest = hashlib.sha256(str(state).encode()).hexdigest()[:10]
    return Path(tempfile.gettempdir()) / f"distdev-ray-{os.getuid()}" / digest


def start_local(state: Path, log: Path, num_cpus: int = 2) -> tuple[str, int, Path]:
    """Start a local Ray instance kept by ``python -m distdev.engines.ray._head`` in its own session;
    return (its address, the keeper's pid, Ray's temporary folder)."""
    require_ray()
    temp = temp_dir_for(state)
    temp.mkdir(parents=True, exist_ok=True)
    address_file = state / "ray-head.address"
    address_file.unlink(missing_ok=True)
    env = {**os.environ, **SETTINGS_ENV}
    with open(log, "a") as out:
        process = subprocess.Popen(
            python_module("distdev.engines.ray._head", "--temp-dir", str(temp),
                          "--address-file", str(address_file), "--num-cpus", str(num_cpus)),
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
            start_new_session=True,
        )
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if address_file.exists():
            return address_file.read_text().strip(), process.pid, temp
        if process.poll() is not None:
            raise DistdevError(f"the local Ray instance did not start; see {log}")
        time.sleep(0.1)
    stop_local(process.pid)
    raise DistdevError(f"the local Ray instance did not start within {START_TIMEOUT:.0f} s; "
                       f"see {log}")


def stop_local(pid: int, timeout: float = 60.0) -> None:
    """Stop a local instance's keeper (it shuts Ray down); kill it if it will not stop."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        os.waitpid(pid, os.WNOHANG)  # reap it if it is our child
    except ChildProcessError:
        pass
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return False
