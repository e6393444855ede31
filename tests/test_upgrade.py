"""`distdev upgrade`: a running deployment moves to a new build and keeps every service's state.

Deployments run as real processes (`distdev up --detach`), are called over the real transport,
upgraded with the real console script and stopped with `distdev down`. A compatible build (a new
export, logic changed behind `distdev.patched`, a service added and one removed) keeps the state
and answers with the new code; an incompatible one is refused before anything changes, naming
its first divergence, and the old deployment goes on answering with its old state.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import SHOP, run_distdev, write_files
from support.engines import SCRIPT, LocalDeployment, build, http_post, running

from distdev import read_journal
from distdev.engines.local import Deployment
from distdev.journal import CallIn, Checkpoint, JournalWriter, Source

V1 = {
    "app.py": """
        from distdev import import_service

        counter = import_service("./counter.py")
        notes = import_service("./notes.py")
        calls = 0

        def bump(n: int) -> int:
            global calls
            calls += 1
            return counter.add(n)

        def note(text: str) -> int:
            return notes.add(text)

        def served() -> int:
            return calls
    """,
    "counter.py": """
        label = "counter"
        total = 0

        def add(n: int) -> int:
            global total
            total += n
            return total
    """,
    "notes.py": """
        texts: list[str] = []

        def add(text: str) -> int:
            texts.append(text)
            return len(texts)
    """,
}

V2 = {  # compatible: old history replays, new calls run the new code
    "app.py": """
        import distdev
        from distdev import import_service

        counter = import_service("./counter.py")
        if not distdev.patched("notes-retired"):
            notes = import_service("./notes.py")
        if distdev.patched("audit"):
            audit = import_service("./audit.py")
        calls = 0

        def bump(n: int) -> int:
            global calls
            calls += 1
            return counter.add(n)

        def note(text: str) -> int:  # history calls it: an export it holds stays
            return notes.add(text)

        def served() -> int:
            return calls
    """,
    "counter.py": """
        import distdev

        step = 2  # a global the old code had not; and its `label` is gone
        total = 0

        def add(n: int) -> int:
            global total
            if distdev.patched("add-twice"):
                total += step * n
            else:
                total += n
            return total

        def peek() -> int:
            return total
    """,
    "audit.py": """
        def ping() -> str:
            return "audit here"
    """,
}

V3 = {  # incompatible: the history's answers change
    "counter.py": """
        total = 0

        def add(n: int) -> int:
            global total
            total += 3 * n  # @tripled
            return total
    """,
}


@pytest.fixture
def builds(tmp_path: Path) -> dict[str, Path]:
    """The three versions, each built into its own folder."""
    outs = {}
    for name, files in (("v1", V1), ("v2", V2), ("v3", {**V1, **V3})):
        source = write_files(tmp_path / name, files)
        outs[name] = tmp_path / f"out-{name}"
        build(source / "app.py", outs[name])
    return outs


@pytest.fixture
def deployment(builds: dict[str, Path], tmp_path: Path) -> Iterator[LocalDeployment]:
    """v1 running, with some state in every service."""
    with running(builds["v1"], tmp_path / "state") as deployment:
        assert deployment.call("app", "bump", 1) == 1
        assert deployment.call("app", "bump", 2) == 3
        assert deployment.call("app", "note", "first") == 1
        yield deployment


def _reconnect(deployment: LocalDeployment) -> None:
    """After an upgrade the deployment has the new build's addresses and secret."""
    deployment.info = Deployment.load(deployment.state)
    deployment.secret = deployment.info.secret()


def test_upgrade_keeps_state_and_answers_with_the_new_code(
    deployment: LocalDeployment, builds: dict[str, Path],
) -> None:
    result = run_distdev("upgrade", builds["v2"], "--state", deployment.state, "--json")
    assert result.returncode == 0, result.stdout + result.stderr + deployment.logs()
    report = json.loads(result.stdout)
    assert report["upgraded"] is True
    assert sorted(report["changed"]) == ["app", "app/counter"]
    assert report["added"] == ["app/audit"] and report["removed"] == ["app/notes"]
    assert Deployment.load(deployment.state).out == str(builds["v2"].resolve())
    _reconnect(deployment)
    assert deployment.call("app/counter", "peek") == 3  # a new export, the old state
    assert deployment.call("app", "served") == 2
    assert deployment.call("app", "bump", 1) == 5  # the patched logic: 3 + 2 * 1
    assert deployment.call("app", "served") == 3
    assert deployment.call("app/audit", "ping") == "audit here"  # a new service runs
    # each changed journal ends with its new code and a checkpoint the new code's replay of
    # its history took: the restart loaded that, replaying nothing
    for service_id in ("app", "app/counter"):
        events = read_journal(deployment.journal(service_id)).events
        kinds = [type(e).__name__ for e in events]
        at = max(i for i, kind in enumerate(kinds) if kind == "Checkpoint")
        assert "Source" in kinds[:at] and kinds.index("Source") > kinds.index("CallIn"), (
            kinds[-8:], result.stdout + result.stderr)
        assert "and the 0 records after it" in deployment.log(service_id), service_id


def test_upgraded_journal_replays_alone_with_its_new_code(
    deployment: LocalDeployment, builds: dict[str, Path],
) -> None:
    result = run_distdev("upgrade", builds["v2"], "--state", deployment.state)
    assert result.returncode == 0, result.stdout + result.stderr
    _reconnect(deployment)
    assert deployment.call("app", "bump", 1) == 5
    journal = deployment.journal("app/counter")
    # the journal carries the new code: replayed alone, and after a restart, it is the state
    replayed = run_distdev("replay", journal, "--json")
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert json.loads(replayed.stdout)["state"]["total"] == 5
    # a global the upgrade left as it was (the root's proxy `counter`) is in the new code's
    # first digest, which is whole: the root's journal replays too
    replayed = run_distdev("replay", deployment.journal("app"), "--json")
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert json.loads(replayed.stdout)["state"]["counter"] == {"$service": "app/counter"}
    deployment.kill_and_wait_for_restart("app/counter")
    assert deployment.call("app/counter", "peek") == 5
    assert deployment.call("app", "bump", 1) == 7


def test_upgrade_restarts_a_deployment_journaling_as_it_was_started(
    builds: dict[str, Path], tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    with running(builds["v1"], state, "--no-sync") as deployment:
        assert deployment.call("app", "bump", 1) == 1
        assert Deployment.load(state).durable is False
        result = run_distdev("upgrade", builds["v2"], "--state", state)
        assert result.returncode == 0, result.stdout + result.stderr
        assert Deployment.load(state).durable is False  # still without fdatasync
        _reconnect(deployment)
        assert deployment.call("app", "bump", 1) == 3
        source = write_files(tmp_path / "v2b", {**V2, "counter.py": V2["counter.py"] + """

        def twice() -> int:
            return 2 * total
        """})
        build(source / "app.py", tmp_path / "out-v2b")
        result = run_distdev("upgrade", tmp_path / "out-v2b", "--state", state, "--sync")
        assert result.returncode == 0, result.stdout + result.stderr
        assert Deployment.load(state).durable is True  # as told
        _reconnect(deployment)
        assert deployment.call("app/counter", "twice") == 6


def test_upgrade_retires_a_removed_service_and_keeps_its_journal(
    deployment: LocalDeployment, builds: dict[str, Path],
) -> None:
    result = run_distdev("upgrade", builds["v2"], "--state", deployment.state)
    assert result.returncode == 0, result.stdout + result.stderr
    assert not (deployment.state / "app" / "notes").exists()
    kept = list((deployment.state / "retired").glob("*/app/notes/journal.cbor"))
    assert len(kept) == 1
    replayed = run_distdev("replay", kept[0], "--json")
    assert replayed.returncode == 0, replayed.stderr
    assert json.loads(replayed.stdout)["state"]["texts"] == ["first"]
    assert "app/notes" not in Deployment.load(deployment.state).services


def test_incompatible_upgrade_is_refused_before_anything_changes(
    deployment: LocalDeployment, builds: dict[str, Path],
) -> None:
    journal = deployment.journal("app/counter")
    before = journal.read_bytes()
    supervisor = Deployment.load(deployment.state).supervisor
    result = run_distdev("upgrade", builds["v3"], "--state", deployment.state)
    assert result.returncode == 2, result.stdout + result.stderr
    said = " ".join(result.stderr.split())
    assert "nothing changed" in said
    # per service its first divergence: the event, what the journal holds, what the new code did
    assert "app/counter: at event" in said and "return 1" in said, said
    assert "returned 3" in said and "counter.py" in said, said
    assert journal.read_bytes() == before
    info = Deployment.load(deployment.state)
    assert info.supervisor == supervisor and info.out == str(builds["v1"].resolve())
    assert deployment.call("app", "bump", 1) == 4  # the old code, with the old state


def test_up_over_state_of_other_code_says_to_upgrade(
    deployment: LocalDeployment, builds: dict[str, Path], tmp_path: Path,
) -> None:
    copy = tmp_path / "copy"
    copy.mkdir()
    for service_id in ("app", "app/counter", "app/notes"):
        target = copy / service_id / "journal.cbor"
        target.parent.mkdir(parents=True)
        target.write_bytes(deployment.journal(service_id).read_bytes())
    result = run_distdev("up", builds["v2"], "--state", copy, "--detach")
    assert result.returncode == 1
    said = " ".join(result.stderr.split())
    assert "recorded by other code" in said and "distdev upgrade" in said, said
    assert "app/counter (counter.py differ)" in said


SHOP_SERVICES = ("app.py", "catalog.py", "billing/billing.py", "billing/ledger.py",
                 "orders/orders.py")


def _ingress(state: Path) -> str:
    deployment = Deployment.load(state)
    return f"http://127.0.0.1:{deployment.services[deployment.root].http}"


@pytest.mark.slow
def test_upgrade_of_the_shop_keeps_its_orders_and_revenue(tmp_path: Path) -> None:
    """examples/shop (its root interleaves calls; orders, billing and its ledger hold state): a
    new function in every service's module, the root's a new HTTP endpoint."""
    source = tmp_path / "shop"
    shutil.copytree(SHOP, source, ignore=shutil.ignore_patterns("__pycache__"))
    build(source / "app.py", tmp_path / "out-1")
    with running(tmp_path / "out-1", tmp_path / "state", "--port", "0") as deployment:
        url = _ingress(deployment.state)
        answers = [http_post(url, export, body) for export, body in SCRIPT]
        placed = [body["order_id"] for (status, body) in answers
                  if status == 200 and isinstance(body, dict) and "order_id" in body]
        assert placed, answers
        revenue = http_post(url, "revenue", {})
        status_before = http_post(url, "order_status", {"order_id": placed[0]})
        for rel in SHOP_SERVICES:
            with open(source / rel, "a") as module:
                module.write("\n\ndef version() -> int:\n    return 2\n")
        build(source / "app.py", tmp_path / "out-2")
        result = run_distdev("upgrade", tmp_path / "out-2", "--state", deployment.state, "--json")
        assert result.returncode == 0, result.stdout + result.stderr + deployment.logs()
        assert sorted(json.loads(result.stdout)["changed"]) == sorted(
            ["app", "app/catalog", "app/billing", "app/billing/ledger", "app/orders"])
        url = _ingress(deployment.state)
        assert http_post(url, "version", {}) == (200, 2)
        assert http_post(url, "revenue", {}) == revenue
        assert http_post(url, "order_status", {"order_id": placed[0]}) == status_before
        assert http_post(url, "place_order", {"user": "dee", "item": "pen"})[0] == 200


@pytest.mark.slow
def test_upgrade_of_a_journal_that_ends_inside_a_call_starts_the_new_code_where_it_was_idle(
    builds: dict[str, Path], tmp_path: Path,
) -> None:
    """A service killed while running a call (its caller never got the answer, and sends it
    again): the gate checks the journal up to its last idle point, and the upgrade cuts the
    unfinished call aside, as a restore would, before the new code's records."""
    state = tmp_path / "state"
    with running(builds["v1"], state) as deployment:
        assert deployment.call("app", "bump", 1) == 1
    journal = state / "app" / "counter" / "journal.cbor"
    writer = JournalWriter.append_to(journal)
    writer.write(CallIn(seq=writer.next_seq, caller="app", chain="c-1", export="add", args=[5],
                        kwargs={}, caller_seq="x/1"))
    writer.close()
    unfinished = journal.stat().st_size
    result = run_distdev("upgrade", builds["v2"], "--state", state)
    assert result.returncode == 0, result.stdout + result.stderr
    assert list(journal.parent.glob("journal.cbor.cut-at-*")), "the cut call is kept aside"
    events = read_journal(journal).events
    assert not any(type(e) is CallIn and e.args == [5] for e in events)
    assert isinstance(events[-2], Source) and journal.stat().st_size != unfinished
    assert isinstance(events[-1], Checkpoint)  # the new code's state where it was idle
    with running(builds["v2"], state) as upgraded:
        assert upgraded.call("app/counter", "peek") == 1
        assert upgraded.call("app", "bump", 1) == 3


def test_upgrade_refuses_a_service_whose_module_moved_changing_nothing(
    deployment: LocalDeployment, tmp_path: Path,
) -> None:
    moved = {**V1, "app.py": V1["app.py"].replace('"./counter.py"', '"./lib/counter.py"')}
    moved["lib/counter.py"] = moved.pop("counter.py")
    source = write_files(tmp_path / "moved", moved)
    build(source / "app.py", tmp_path / "out-moved")
    result = run_distdev("upgrade", tmp_path / "out-moved", "--state", deployment.state)
    assert result.returncode == 1
    said = " ".join(result.stderr.split())
    assert "app/counter's module is lib/counter.py in the new build but was counter.py" in said
    assert deployment.call("app", "bump", 1) == 4  # still the old deployment, with its state


@pytest.mark.slow
def test_upgrade_over_compacted_journals_loads_their_checkpoints_into_the_new_code(
    builds: dict[str, Path], tmp_path: Path,
) -> None:
    """Journals compacted to their last checkpoint hold no history before it: the gate loads
    each checkpoint into the new code and replays the records after it, a divergence there is
    refused as for a whole journal, and the upgraded services go on from the checkpoints'
    state with the new code. (The services are killed, not stopped: `down` would checkpoint
    them at their end, leaving the gate no records after the checkpoint to check.)"""
    state = tmp_path / "state"
    with running(builds["v1"], state) as deployment:
        connection = deployment.connect("app")
        try:
            for i in range(700):  # ~2,800 records in the root's journal, ~1,400 in the counter's
                assert connection.call("test-client", f"bump-{i}", i, "bump", [1], {}) == i + 1
        finally:
            connection.close()
        for service_id in ("app/counter", "app"):  # ended by kill -9: no checkpoint at the
            deployment.kill_and_wait_for_restart(service_id)  # stop, the calls since stay
    journals = {sid: state / sid / "journal.cbor" for sid in ("app", "app/counter")}
    for service_id, journal in journals.items():
        result = run_distdev("journal", "compact", journal)
        assert result.returncode == 0, result.stdout + result.stderr
        events = read_journal(journal).events
        assert len(events) < 1000 and not any(
            type(e) is CallIn and e.caller_seq == "bump-0" for e in events), service_id
        assert list(journal.parent.glob("journal.cbor.before-compact-*"))
    compacted = {sid: j.read_bytes() for sid, j in journals.items()}

    result = run_distdev("upgrade", builds["v3"], "--state", state)
    assert result.returncode == 2, result.stdout + result.stderr
    said = " ".join(result.stderr.split())
    assert "app/counter: at event" in said and "nothing changed" in said, said
    assert {sid: j.read_bytes() for sid, j in journals.items()} == compacted

    result = run_distdev("upgrade", builds["v2"], "--state", state, "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(json.loads(result.stdout)["changed"]) == ["app", "app/counter"]
    with running(builds["v2"], state) as upgraded:
        assert upgraded.call("app/counter", "peek") == 700
        assert upgraded.call("app", "served") == 700
        assert upgraded.call("app", "bump", 1) == 702  # the patched logic: 700 + 2 * 1
    for journal in journals.values():  # and each journal replays alone with its new code
        replayed = run_distdev("replay", journal, "--json")
        assert replayed.returncode == 0, replayed.stdout + replayed.stderr
