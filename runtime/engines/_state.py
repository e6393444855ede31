"""A deployment's state folder, engine-neutral: each service's state journal starts as a copy
of its build journal, and is never replaced by a later build's; each resource's storage starts
as a copy of what the build wrote into it, and is never replaced either (later deploys keep
the live content); the secret store starts as the build's and adds the secrets read from the
environment; each service's key file is derived from the build (``_keys``)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from ..build import Manifest, ResourceSpec, ServiceSpec
from ..resources import SECRETS_FOLDER, Declared, SecretStore, data_folder, from_environment
from ._keys import write_key_files

__all__ = ["seed_state", "ingress_port", "declared"]


def seed_state(out: Path, state: Path, manifest: Manifest, warn: Callable[[str], None]) -> None:
    """Create the state folder (with ``logs/``), seed every service's journal and write every
    service's key file."""
    state.mkdir(parents=True, exist_ok=True)
    (state / "logs").mkdir(exist_ok=True)
    for spec in manifest.services:
        _seed_journal(out, state, spec, warn)
    _seed_resources(out, state, manifest.resources)
    write_key_files(out, state, manifest)


def declared(spec: ResourceSpec) -> Declared:
    return Declared(spec.id, spec.parent, spec.kind, spec.options)


def _seed_resources(out: Path, state: Path, resources: list[ResourceSpec]) -> None:
    store = SecretStore(state / SECRETS_FOLDER)
    SecretStore(out / SECRETS_FOLDER).copy_missing(store)
    for spec in resources:
        if spec.kind == "secret":
            from_environment(spec.id, spec.options, store, os.environ)
            continue
        target = data_folder(state, declared(spec))
        if spec.data is not None and not target.exists():  # later deploys keep live content
            shutil.copytree(out / spec.data, target)


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


def _seed_journal(out: Path, state: Path, spec: ServiceSpec,
                  warn: Callable[[str], None]) -> None:
    """Start a service's state journal as a copy of its build journal, unless it has one."""
    journal = state / spec.id / "journal.cbor"
    if not journal.exists():
        journal.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(out / spec.journal, journal)
    elif not _same_start(journal, out / spec.journal):
        warn(f"{spec.id}: its state in {state} began from another build, whose code it "
             f"keeps running; to deploy this build, use a new --state (or remove "
             f"{journal.parent})")
