"""Journals written by earlier distdev releases stay readable: the golden journals of every
format version (tests/golden/v<N>/, written once by tests/golden/make_golden.py and never
again) are read, checked and replayed by this distdev to the state they recorded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import run_distdev

import distdev
from distdev.journal import READABLE_VERSIONS

GOLDEN = Path(__file__).resolve().parent / "golden"
CASES = [(folder.name, name, case) for folder in sorted(GOLDEN.glob("v*"))
         for name, case in json.loads((folder / "expected.json").read_text()).items()]


@pytest.mark.parametrize("version", READABLE_VERSIONS)
def test_every_readable_format_has_golden_journals(version: int) -> None:
    assert [c for c in CASES if c[0] == f"v{version}"], (
        f"tests/golden/v{version} holds no journals: write them once with "
        "`PYTHONHASHSEED=0 python tests/golden/make_golden.py`")


@pytest.mark.parametrize("version, name, case", CASES, ids=[f"{v}/{n}" for v, n, _ in CASES])
def test_golden_journal_reads_with_every_event_it_was_written_with(
        version: str, name: str, case: dict[str, object]) -> None:
    contents = distdev.read_journal(GOLDEN / version / name)
    assert contents.torn is None
    assert contents.header.service == case["service"]
    assert [e.__struct_config__.tag for e in contents.events] == case["kinds"]


@pytest.mark.parametrize("version, name, case", CASES, ids=[f"{v}/{n}" for v, n, _ in CASES])
def test_golden_journal_replays_to_the_state_it_recorded(
        version: str, name: str, case: dict[str, object]) -> None:
    # `distdev replay` runs under the seed the journal records, whatever this process runs under.
    result = run_distdev("replay", GOLDEN / version / name, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["state"] == case["state"]
    checked = run_distdev("journal", "check", GOLDEN / version / name)
    assert checked.returncode == 0, checked.stderr
