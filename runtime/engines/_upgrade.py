"""Upgrading a deployment's state to a new build, engine-neutral: what changed, the gate, and
what an upgrade writes.

A service's state is its journal, so an upgrade keeps the journal and changes the code that
replays it. For every service of the deployment the new build is compared with the code its
state journal carries (its header's bundle, and the source records after it: the latest win):

- unchanged: same files, same digests; nothing is written.
- changed: its whole journal is replayed against the new build's copy of the application
  (``check_journal``, the gate of ``distdev check``). Only if every changed service replays is
  anything written: then the new build's files are appended to its journal as source records,
  so the journal stays self-describing — a restore, or a later ``distdev replay``, runs the new
  code, and knows from that point (``code_changed_at``) that the state digests before it were
  the old code's. After them comes a checkpoint of the service as the gate's replay left it,
  taken with the new code, so that its restart loads its state instead of replaying its
  history a second time.
- added: in the new build only; its state journal is seeded from the new build journal.
- removed: in the deployment only; its folder is moved aside under ``STATE/retired/``, never
  deleted.

A journal only grows here, so the seqs a service gives its call-outs keep growing too: no call
made after the upgrade can carry the id of one made before it (the callees' ``DedupTable``).
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from ..build import APP_FILES, Manifest, read_manifest
from ..errors import DeploymentError, DistdevError
from ..journal import READ_PAST, BundleFile, JournalWriter, Source, read_journal
from ..replayer import ReplayedService, Verdict, bundle_files, check_and_restore
from ._live import checkpoint_restored
from ._restore import answered_after, last_idle_offset, restorable_journal

__all__ = ["UpgradePlan", "UpgradeRefused", "upgrade_deployment", "plan_upgrade", "check_changed",
           "write_new_code", "retire", "RETIRED_FOLDER"]

RETIRED_FOLDER = "retired"
"""The state folder's folder of retired services' state, one subfolder per upgrade."""


@dataclasses.dataclass
class UpgradePlan:
    """What an upgrade to the build in ``out`` does to each service of a deployment."""

    out: Path
    changed: dict[str, list[str]]
    """Service id -> the files whose content the new build changes or adds."""
    unchanged: list[str]
    added: list[str]
    removed: list[str]
    verdicts: dict[str, Verdict] = dataclasses.field(default_factory=dict)
    """The gate's verdict for each changed service (``check_changed``)."""
    checked: dict[str, int] = dataclasses.field(default_factory=dict)
    """How many bytes of each changed journal its verdict covers."""
    restored: dict[str, ReplayedService] = dataclasses.field(default_factory=dict, repr=False)
    """Each compatible changed service as the gate's replay left it, with the new code: its
    checkpoint, written after the new code, spares its restart the replay of its history."""

    def keep(self, service_id: str, restored: ReplayedService | None) -> None:
        """Keep ``restored`` for ``service_id`` (None: nothing to keep), dropping any earlier."""
        earlier = self.restored.pop(service_id, None)
        if earlier is not None:
            earlier.service.compartment.unload()
        if restored is not None:
            self.restored[service_id] = restored

    def drop_restored(self) -> None:
        for service_id in list(self.restored):
            self.keep(service_id, None)

    @property
    def refused(self) -> dict[str, Verdict]:
        """The changed services whose journal the new code does not replay."""
        return {sid: v for sid, v in self.verdicts.items() if v.result != "compatible"}

    def refusal(self) -> str:
        """Per refused service, its first divergence: the event, what the journal holds, what
        the new code did and where."""
        lines = []
        for service_id, verdict in self.refused.items():
            if verdict.result == "diverged":
                line = (f"{service_id}: at event {verdict.seq} the journal holds "
                        f"{verdict.expected}; the new code {verdict.actual} at "
                        f"{verdict.location}")
                if verdict.journal_location:
                    line += f" (the journal's code was at {verdict.journal_location})"
            else:
                line = f"{service_id}: {verdict.message}"
            lines.append(line)
        return "\n".join(lines)

    def as_json(self) -> dict[str, object]:
        return {"out": str(self.out), "changed": self.changed, "unchanged": self.unchanged,
                "added": self.added, "removed": self.removed,
                "verdicts": {sid: v.as_json() for sid, v in self.verdicts.items()}}


class UpgradeRefused(DeploymentError):
    """The new code does not replay a changed service's journal: nothing was changed. The
    message names each such service's first divergence; ``plan`` holds every verdict."""

    def __init__(self, plan: UpgradePlan) -> None:
        super().__init__(plan.refusal())
        self.plan = plan


def upgrade_deployment(out: Path, old_out: Path, state: Path, journals: Mapping[str, Path],
                       hash_seed: str | None, running: bool, stop: Callable[[], object],
                       start: Callable[[Path], None], echo: Callable[[str], None]) -> UpgradePlan:
    """Move a deployment from the build in ``old_out`` to the one in ``out`` (``journals``:
    service id -> state journal), for an engine that can ``stop`` its deployment and ``start`` a
    build over its state folder, in the order that makes "nothing changes unless everything
    replays" hold:

    1. the gate, while the old deployment still serves: every changed service's journal is
       replayed against the new code; a divergence refuses the upgrade with nothing touched;
    2. ``stop`` (services stop between calls, their journals durable);
    3. a journal that grew since it was checked (calls arrived meanwhile) is checked again; a
       divergence now starts the old build again over the untouched state, and refuses;
    4. the new code is appended to the changed journals, each followed by a checkpoint of the
       state the gate's replay left the service in (its restart loads it instead of replaying
       its history again), removed services are retired, and the new build starts over the
       state folder: every service restores from its journal.

    A deployment that was not ``running`` is only upgraded (1 and 4, without starting it).
    Every service restarts, not only the changed ones: the new build has a secret of its own,
    so every edge's key changes with it (``_keys``), and a service holding the old keys could
    not call one holding the new."""
    manifest = read_manifest(out)
    plan = plan_upgrade(out, manifest, journals, hash_seed)
    try:
        _check_and_write(plan, manifest, journals, running, stop, start, old_out, echo)
    finally:
        plan.drop_restored()
    return _finish(plan, state, running, out, start, echo)


def _check_and_write(plan: UpgradePlan, manifest: Manifest, journals: Mapping[str, Path],
                     running: bool, stop: Callable[[], object], start: Callable[[Path], None],
                     old_out: Path, echo: Callable[[str], None]) -> None:
    """Steps 1 to 4's writing of the new code (``upgrade_deployment``), and a checkpoint of
    each changed service with it."""
    check_changed(plan, journals, stopped=not running)
    if plan.refused:
        raise UpgradeRefused(plan)
    if running:
        echo(f"the new code replays {_count(plan.changed)}; stopping the deployment")
        stop()
        unchecked = {sid for sid, size in plan.checked.items() if _grew(journals[sid], size)}
        check_changed(plan, journals, only=unchecked.__contains__, stopped=True)
        if plan.refused:
            echo("calls that arrived during the check do not replay; starting the old build "
                 "again")
            start(old_out)
            raise UpgradeRefused(plan)
    write_new_code(plan, manifest, journals, echo)
    checkpoint_new_code(plan, journals, echo)


def _grew(journal: Path, size: int) -> bool:
    """Whether the journal holds more than it did at ``size`` bytes: records a replay must
    deliver (a service stopping writes a checkpoint and a digest, which change nothing)."""
    contents = read_journal(journal)
    return any(offset >= size and type(event) not in READ_PAST
               for offset, event in zip(contents.offsets, contents.events))


def _finish(plan: UpgradePlan, state: Path, running: bool, out: Path,
            start: Callable[[Path], None], echo: Callable[[str], None]) -> UpgradePlan:
    retired = retire(state, plan.removed)
    if retired is not None:
        echo(f"retired {', '.join(plan.removed)}: their state is in {retired}")
    if running:
        try:
            start(out)
        except DistdevError as exc:
            raise DeploymentError(f"the upgraded deployment did not start: {exc}") from None
    return plan


def _count(services: dict[str, list[str]]) -> str:
    if len(services) == 1:
        return "the journal of the changed service"
    return f"the journals of all {len(services)} changed services"


def plan_upgrade(out: Path, manifest: Manifest, journals: Mapping[str, Path],
                 hash_seed: str | None) -> UpgradePlan:
    """Compare the build in ``out`` with the state journals of a deployment (service id ->
    state journal) and say what an upgrade does to each service; nothing is written."""
    if manifest.hash_seed != hash_seed:
        raise DistdevError(
            f"the build in {out} pins PYTHONHASHSEED={manifest.hash_seed}, but the deployment's "
            f"journals were recorded under {hash_seed}: set order would differ on replay. "
            f"Build again under PYTHONHASHSEED={hash_seed}")
    plan = UpgradePlan(out, {}, [], [], [])
    new_ids = [spec.id for spec in manifest.services]
    for spec in manifest.services:
        journal = journals.get(spec.id)
        if journal is None:
            plan.added.append(spec.id)
            continue
        old, new = read_journal(journal), read_journal(out / spec.journal)
        if old.header.entry != new.header.entry:
            raise DistdevError(
                f"{spec.id}'s module is {new.header.entry} in the new build but was "
                f"{old.header.entry}: an upgrade replays a service's journal against the new "
                f"version of its own module. Keep the file where it was, or give the service "
                f"another name (the old one is then retired)")
        carried, offered = bundle_files(old), bundle_files(new)
        differing = sorted(path for path, (digest, _) in offered.items()
                           if carried.get(path, ("",))[0] != digest)
        if differing:
            plan.changed[spec.id] = differing
        else:
            plan.unchanged.append(spec.id)
    plan.removed = [sid for sid in journals if sid not in new_ids]
    return plan


def check_changed(plan: UpgradePlan, journals: Mapping[str, Path],
                  only: Callable[[str], bool] = lambda _: True, *, stopped: bool) -> None:
    """Replay each changed service's journal (those ``only`` accepts) against the new build's
    copy of the application; record the verdicts in ``plan``, and keep each compatible
    service as its replay left it (``UpgradePlan.restored``). Writes nothing. ``stopped``:
    the deployment is not running, so a journal's end is where its service will restore."""
    source = plan.out / APP_FILES
    for service_id in plan.changed:
        if only(service_id):
            verdict, checked, restored = _check_to_idle(journals[service_id], source, stopped)
            plan.verdicts[service_id], plan.checked[service_id] = verdict, checked
            plan.keep(service_id, restored)


def checkpoint_new_code(plan: UpgradePlan, journals: Mapping[str, Path],
                        echo: Callable[[str], None]) -> None:
    """Checkpoint each changed service with the new code, after its new code's source
    records: the gate's replay left it in the state its history gives the new code, so its
    restart loads that instead of replaying the history again. A state that cannot be
    snapshotted writes none (the restart replays the history), and says so."""
    for service_id, restored in plan.restored.items():
        def said(line: str, sid: str = service_id) -> None:
            echo(f"{sid}: {line}")

        checkpoint_restored(restored, journals[service_id], said)


def _check_to_idle(journal: Path, source: Path,
                   stopped: bool) -> tuple[Verdict, int, ReplayedService | None]:
    """Check the journal up to where its service was last idle; return the verdict and the
    bytes it covers. A call still running when a live journal is read ends where the journal
    does, and other code would be told it went on past it: the rest is checked once the
    deployment has stopped. A stopped service's unfinished call is cut by its restore (its
    caller sends it again), unless the service interleaves its calls and answered others after
    it began: then its restore resumes the open calls, which the new code cannot be checked
    against, and the upgrade is refused."""
    contents = read_journal(journal)
    idle = last_idle_offset(contents)
    cut = min(idle, contents.good_size)
    if cut >= contents.size:
        verdict, restored = check_and_restore(journal, source)
        return verdict, contents.size, restored
    if stopped and answered_after(contents, idle):
        return Verdict(str(journal), contents.header.service, len(contents.events),
                       "unreadable", "its journal ends inside calls that were running when its "
                       "process stopped, and other calls it answered after they began; they go "
                       "on when it restores. Start the deployment with its current build once "
                       "(`distdev up`), let them finish, then upgrade"), contents.size, None
    with tempfile.TemporaryDirectory(prefix="distdev-upgrade-") as folder:
        prefix = Path(folder) / journal.name
        with open(journal, "rb") as f:
            prefix.write_bytes(f.read(cut))
        verdict, restored = check_and_restore(prefix, source)
    verdict.journal = str(journal)
    # The service as it stood at the cut: where its journal is cut before the new code is
    # written (``write_new_code``), unless records it must replay come after (checked again).
    return verdict, cut if not stopped else contents.size, restored


def write_new_code(plan: UpgradePlan, manifest: Manifest, journals: Mapping[str, Path],
                   log: Callable[[str], None]) -> None:
    """Append the new build's changed and added files to each changed service's journal, as
    source records: from here on the journal carries, and replays, the new code. A journal
    whose service was killed mid-call is first cut back to its last idle point, as its restore
    would (the cut kept in a side file): the new code starts there."""
    for service_id, paths in plan.changed.items():
        offered = bundle_files(read_journal(plan.out / manifest.service(service_id).journal))
        restorable_journal(journals[service_id], lambda line, sid=service_id: log(f"{sid}: {line}"))
        writer = JournalWriter.append_to(journals[service_id])
        try:
            for path in paths:
                digest, source = offered[path]
                writer.write(Source(seq=writer.next_seq, file=BundleFile(path, digest, source)))
            writer.sync()
        finally:
            writer.close()


def retire(state: Path, service_ids: list[str]) -> Path | None:
    """Move each removed service's state folder under ``STATE/retired/<time>/``; return that
    folder (None: nothing to retire). Its journal is kept whole: it can still be replayed."""
    if not service_ids:
        return None
    folder = state / RETIRED_FOLDER / time.strftime("%Y%m%dT%H%M%S")
    # Parents first: a parent's folder holds its children's, which move with it.
    for service_id in sorted(service_ids, key=lambda sid: sid.count("/")):
        source = state / service_id
        if source.is_dir():
            target = folder / service_id
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(source), str(target))
    return folder
