"""`distdev upgrade --engine ray`: a Ray deployment moves to a new build and keeps its state;
an incompatible build is refused, the old deployment answering on.

Deployed with the real console script on the session's Ray instance (``ray_address``), called
with `distdev call --engine ray`, stopped with `distdev down --engine ray`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import run_distdev, write_files
from support.engines import build

from distdev import read_journal
from distdev.engines.ray._layout import RayDeployment
from distdev.journal import Checkpoint

V1 = {
    "app.py": """
        from distdev import import_service

        counter = import_service("./counter.py")

        def bump(n: int) -> int:
            return counter.add(n)
    """,
    "counter.py": """
        total = 0

        def add(n: int) -> int:
            global total
            total += n
            return total
    """,
}

V2 = {"counter.py": """
    import distdev

    total = 0

    def add(n: int) -> int:
        global total
        if distdev.patched("add-twice"):
            total += 2 * n
        else:
            total += n
        return total

    def peek() -> int:
        return total
"""}

V3 = {"counter.py": """
    total = 0

    def add(n: int) -> int:
        global total
        total += 3 * n
        return total
"""}


def _call(state: Path, target: str, *args: str) -> object:
    result = run_distdev("call", target, *args, "--engine", "ray", "--state", state)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


@pytest.fixture
def deployment(ray_address: str, tmp_path: Path) -> Iterator[tuple[Path, dict[str, Path]]]:
    outs = {}
    for name, files in (("v1", V1), ("v2", {**V1, **V2}), ("v3", {**V1, **V3})):
        source = write_files(tmp_path / name, files)
        outs[name] = tmp_path / f"out-{name}"
        build(source / "app.py", outs[name])
    state = tmp_path / "state"
    result = run_distdev("deploy", outs["v1"], "--engine", "ray", "--address", ray_address,
                         "--state", state, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    try:
        assert _call(state, "app.bump", "1") == 1
        assert _call(state, "app.bump", "2") == 3
        yield state, outs
    finally:
        result = run_distdev("down", "--engine", "ray", "--state", state, timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr


def test_ray_upgrade_keeps_state_and_answers_with_the_new_code(
    deployment: tuple[Path, dict[str, Path]],
) -> None:
    state, outs = deployment
    result = run_distdev("upgrade", outs["v2"], "--engine", "ray", "--state", state, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert RayDeployment.load(state).out == str(outs["v2"].resolve())
    assert _call(state, "app/counter.peek") == 3
    assert _call(state, "app.bump", "1") == 5


def test_ray_upgrade_refuses_an_incompatible_build_changing_nothing(
    deployment: tuple[Path, dict[str, Path]],
) -> None:
    state, outs = deployment
    result = run_distdev("upgrade", outs["v3"], "--engine", "ray", "--state", state, timeout=300)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "app/counter: at event" in " ".join(result.stderr.split())
    assert RayDeployment.load(state).out == str(outs["v1"].resolve())
    assert _call(state, "app.bump", "1") == 4


MANY = {"app.py": """
    from distdev import import_service

    counter = import_service("./counter.py")

    def bump(n: int) -> int:
        return counter.add(n)

    def bump_many(n: int) -> int:
        total = 0
        for _ in range(n):
            total = counter.add(1)
        return total
"""}


def test_ray_upgrade_over_compacted_journals_keeps_the_checkpoints_state(
    ray_address: str, tmp_path: Path,
) -> None:
    """A stopped Ray deployment whose journals were compacted to their last checkpoint (the
    one `down` takes): the upgrade loads each checkpoint into the new code, and the upgraded
    deployment goes on from the checkpoints' state with the new code. (The gate's refusal over
    a compacted journal is engine-neutral: tests/test_upgrade.py.)"""
    outs = {}
    for name, files in (("v1", {**V1, **MANY}), ("v2", {**V1, **MANY, **V2})):
        source = write_files(tmp_path / name, files)
        outs[name] = tmp_path / f"out-{name}"
        build(source / "app.py", outs[name])
    state = tmp_path / "state"

    def deploy(out: Path) -> None:
        result = run_distdev("deploy", out, "--engine", "ray", "--address", ray_address,
                             "--state", state, timeout=300)
        assert result.returncode == 0, result.stdout + result.stderr

    def down() -> None:
        result = run_distdev("down", "--engine", "ray", "--state", state, timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr

    deploy(outs["v1"])
    try:
        assert _call(state, "app.bump_many", "600") == 600  # ~1,200 records in the counter's
        assert _call(state, "app.bump", "1") == 601
    finally:
        down()
    journals = {sid: RayDeployment.load(state).journal(sid) for sid in ("app", "app/counter")}
    for service_id, journal in journals.items():
        assert type(read_journal(journal).events[-1]) is Checkpoint, service_id  # `down`'s
        result = run_distdev("journal", "compact", journal)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "from the checkpoint at record" in result.stdout, service_id

    result = run_distdev("upgrade", outs["v2"], "--engine", "ray", "--state", state, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    deploy(outs["v2"])
    try:
        assert _call(state, "app/counter.peek") == 601
        assert _call(state, "app.bump", "1") == 603  # the patched logic: 601 + 2 * 1
    finally:
        down()
