"""A root that may interleave its calls (when built with ROOT_INTERLEAVE=1): ``slow`` waits on
a child (two of them, so that two calls can wait at once), which waits for a file the test
creates; ``fast`` calls nothing."""

from __future__ import annotations

import os

from distdev import host, import_service

host.process(interleave=os.environ.get("ROOT_INTERLEAVE") == "1")

children = {"left": import_service("./child.py", name="left"),
            "right": import_service("./child.py", name="right")}
log: list[str] = []


def slow(gates: str, name: str, via: str = "left") -> str:
    log.append(f"start {name}")
    got = children[via].wait_for(gates, name)
    log.append(f"end {name}")
    return got


def relay(name: str, via: str) -> int:
    log.append(f"relay {name}")
    got = children[via].echo(len(log))
    log.append(f"relayed {name} {got}")
    return got


def fast(name: str) -> int:
    log.append(f"fast {name}")
    return len(log)


def history() -> list[str]:
    return list(log)
