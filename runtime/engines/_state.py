"""A deployment's state folder, engine-neutral: each service's state journal starts as a copy
of its build journal, and is never replaced by a later build's; each service's key file is
derived from the build (``_keys``).

A state journal that carries other code than the build's is refused, never run as it is: the
deployment would answer with code that is not the build's. ``distdev upgrade`` is how a state
folder moves to a new build (``_upgrade``); once it has, its journals carry the new code and the
build deploys over them as over its own."""

from __future__ import annotations

import shutil
from pathlib import Path

from ..build import Manifest, ServiceSpec
from ..errors import DeploymentError, JournalError
from ..journal import read_journal
from ..replayer import bundle_files
from ._keys import write_key_files

__all__ = ["seed_state", "ingress_port"]


def seed_state(out: Path, state: Path, manifest: Manifest) -> None:
    """Create the state folder (with ``logs/``), seed every service's journal and write every
    service's key file; refuse, before writing anything, state recorded by other code."""
    stale = [problem for spec in manifest.services
             if (problem := _other_code(out, state, spec)) is not None]
    if stale:
        raise DeploymentError(
            f"the state in {state} was recorded by other code than the build in {out}: "
            f"{'; '.join(stale)}. To run this build over that state, upgrade it: `distdev "
            f"upgrade {out} --state {state}` (it first checks that the new code replays every "
            f"changed service's journal); or pass a new --state to start afresh")
    state.mkdir(parents=True, exist_ok=True)
    (state / "logs").mkdir(exist_ok=True)
    for spec in manifest.services:
        journal = state / spec.id / "journal.cbor"
        if not journal.exists():
            journal.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(out / spec.journal, journal)
    write_key_files(out, state, manifest)


def ingress_port(manifest: Manifest, override: int | None) -> int | None:
    """The root's ingress port: the one it declared, or ``--port`` instead (0: any free one);
    None when it declared none."""
    host = manifest.root_service.host
    declared = None if host is None else host.http
    return declared if declared is None or override is None else override


def _same_start(state_journal: Path, build_journal: Path) -> bool:
    """Whether a state journal starts with this build journal (same header and events)."""
    size = build_journal.stat().st_size
    with open(state_journal, "rb") as f:
        return f.read(size) == build_journal.read_bytes()


def code_differences(state_journal: Path, build_journal: Path) -> list[str]:
    """The files of the build journal's code that the state journal carries otherwise (or
    not at all): empty when the state journal runs the build's code."""
    carried = bundle_files(read_journal(state_journal))
    offered = bundle_files(read_journal(build_journal))
    return sorted(path for path, (digest, _) in offered.items()
                  if carried.get(path, ("",))[0] != digest)


def _other_code(out: Path, state: Path, spec: ServiceSpec) -> str | None:
    """How a service's existing state journal carries other code than the build's (None: it
    has none yet, or it runs the build's code)."""
    journal = state / spec.id / "journal.cbor"
    if not journal.exists() or _same_start(journal, out / spec.journal):
        return None
    try:
        differing = code_differences(journal, out / spec.journal)
    except JournalError:
        return None  # its restore says what is wrong with it, naming the service
    return f"{spec.id} ({', '.join(differing)} differ)" if differing else None
