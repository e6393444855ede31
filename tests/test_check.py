"""`distdev check`, the compatibility gate: journals copied from a running deployment are
replayed against changed code, and each service is reported compatible or with its first
divergence — what the new code did and where, and where the journal's own code was."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from support import run_distdev, write_files
from support.engines import build, running

from distdev import read_journal
from distdev.testing import assert_compatible, journal_cases, load_app, replay

SERVICES = [f"s{i}" for i in range(9)]


def _app() -> dict[str, str]:
    files = {"app.py": "from distdev import import_service\n\n" + "".join(
        f'{name} = import_service("./{name}.py")\n' for name in SERVICES) + """

def work(n: int) -> int:
    return sum(s.add(n) for s in (""" + ", ".join(SERVICES) + """,))
"""}
    for name in SERVICES:
        files[f"{name}.py"] = """
            total = 0

            def add(n: int) -> int:
                global total
                total += n
                return total
        """
    return files


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(application source, a copy of its state folder after some calls under `up`)."""
    folder = tmp_path_factory.mktemp("check")
    source = write_files(folder / "src", _app())
    build(source / "app.py", folder / "out")
    with running(folder / "out", folder / "state") as deployment:
        for n in (1, 2, 3):
            deployment.call("app", "work", n)
    copy = folder / "journals"
    shutil.copytree(folder / "state", copy, ignore=shutil.ignore_patterns("keys", "sockets", "*.log"))
    return source, copy


def _changed(source: Path, tmp_path: Path, service: str, old: str, new: str) -> Path:
    changed = tmp_path / "changed"
    shutil.copytree(source, changed)
    path = changed / f"{service}.py"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    return changed


def test_check_passes_every_service_of_the_code_that_wrote_the_journals(
    recorded: tuple[Path, Path],
) -> None:
    source, journals = recorded
    result = run_distdev("check", journals, "--source", source, "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    verdicts = json.loads(result.stdout)
    assert sorted(v["service"] for v in verdicts) == sorted(
        ["app"] + [f"app/{name}" for name in SERVICES])
    assert {v["result"] for v in verdicts} == {"compatible"}


def test_check_finds_the_divergence_planted_in_one_of_ten_services(
    recorded: tuple[Path, Path], tmp_path: Path,
) -> None:
    source, journals = recorded
    changed = _changed(source, tmp_path, "s4", "total += n", "total += 2 * n")
    result = run_distdev("check", journals, "--source", changed, "--json")
    assert result.returncode == 2, result.stdout + result.stderr
    verdicts = {v["service"]: v for v in json.loads(result.stdout)}
    diverged = {sid for sid, v in verdicts.items() if v["result"] == "diverged"}
    assert diverged == {"app/s4"}, verdicts
    assert sum(v["result"] == "compatible" for v in verdicts.values()) == 9
    s4 = verdicts["app/s4"]
    assert s4["expected"].startswith("return 1") and s4["actual"] == "returned 2", s4
    assert s4["location"].startswith("s4.py:3 (def add"), s4  # where the new code answered
    assert s4["journal_location"].startswith("s4.py:3 (def add"), s4  # and the old code

    table = run_distdev("check", journals, "--source", changed)
    assert table.returncode == 2
    assert "app/s4" in table.stdout and "diverged" in table.stdout, table.stdout
    assert "replay of app/s4 diverged at event" in table.stderr, table.stderr


def test_a_new_export_is_a_compatible_change(recorded: tuple[Path, Path],
                                              tmp_path: Path) -> None:
    source, journals = recorded
    changed = _changed(source, tmp_path, "s2", "total = 0\n",
                       "total = 0\n\n\ndef half() -> int:\n    return total // 2\n")
    result = run_distdev("check", journals, "--source", changed)
    assert result.returncode == 0, result.stdout + result.stderr


def test_check_says_what_to_name_when_it_finds_no_journal(tmp_path: Path) -> None:
    result = run_distdev("check", tmp_path)
    assert result.returncode == 1
    assert "no journal in" in result.stderr and "folders holding them" in result.stderr


def test_the_testing_helpers_make_a_folder_of_journals_a_gate(
    recorded: tuple[Path, Path], tmp_path: Path,
) -> None:
    source, journals = recorded
    cases = journal_cases(journals)
    assert len(cases) == 10
    for case in cases:
        assert_compatible(case.values[0], source=source)
    changed = _changed(source, tmp_path, "s7", "return total", "return total + 1")
    failures = []
    for case in cases:
        try:
            assert_compatible(case.values[0], source=changed)
        except AssertionError as failed:
            failures.append(str(failed))
    assert len(failures) == 1 and "s7" in failures[0] and "diverged at event" in failures[0]


FEES_OLD = """
    charged: list[int] = []

    def charge(cents: int) -> int:
        fee = round(cents / 100)
        charged.append(cents + fee)
        return fee
"""

FEES_NEW = """
    import distdev

    charged: list[int] = []

    def charge(cents: int) -> int:
        if distdev.patched("fee-floor"):
            fee = cents // 100
        else:
            fee = round(cents / 100)
        charged.append(cents + fee)
        return fee
"""


def test_patched_keeps_old_behaviour_for_old_history_and_new_from_where_it_was_first_asked(
    tmp_path: Path,
) -> None:
    old = write_files(tmp_path / "old", {"app.py": FEES_OLD})
    app = load_app(old / "app.py", out=tmp_path / "b1", state=tmp_path / "s1")
    assert [app.service("app").charge(150), app.service("app").charge(250)] == [2, 2]
    old_journal = app.journal("app")
    app.close()

    new = write_files(tmp_path / "new", {"app.py": FEES_NEW})
    result = run_distdev("check", old_journal, "--source", new, "--json")
    assert result.returncode == 0, result.stdout + result.stderr  # the old branch, replayed
    restored = replay(old_journal, source=new)
    assert restored.namespace["charged"] == [152, 252]

    app = load_app(new / "app.py", out=tmp_path / "b2", state=tmp_path / "s2")
    assert [app.service("app").charge(150), app.service("app").charge(250)] == [1, 2]
    new_journal = app.journal("app")
    app.close()
    markers = [e for e in read_journal(new_journal).events
               if type(e).__name__ == "Effect" and e.effect == "distdev.patched"]
    assert len(markers) == 1 and markers[0].args == ["fee-floor"]  # asked once, recorded once
    assert replay(new_journal, source=new).namespace["charged"] == [151, 252]
    refused = run_distdev("check", new_journal, "--source", old, "--json")
    assert refused.returncode == 2  # the old code does not know the change its history has
    assert "distdev.patched('fee-floor')" in json.loads(refused.stdout)[0]["expected"]


def test_other_code_whose_state_differs_by_design_is_compatible_with_a_note(
    tmp_path: Path,
) -> None:
    old = write_files(tmp_path / "old", {"app.py": "RATE = 1\n\ndef rate() -> int:\n    "
                                         "return 7\n"})
    app = load_app(old / "app.py", out=tmp_path / "b", state=tmp_path / "s")
    app.service("app").rate()
    journal = app.journal("app")
    app.close()
    new = write_files(tmp_path / "new", {"app.py": "RATE = 2\n\ndef rate() -> int:\n    "
                                         "return 7\n"})
    result = run_distdev("check", journal, "--source", new, "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    note = json.loads(result.stdout)[0]["message"]
    assert "global 'RATE' holds 2" in note, note


def test_replay_of_other_code_says_where_its_state_differs(tmp_path: Path) -> None:
    old = write_files(tmp_path / "old", {"app.py": "RATE = 1\n\ndef rate() -> int:\n    "
                                         "return 7\n"})
    app = load_app(old / "app.py", out=tmp_path / "b", state=tmp_path / "s")
    app.service("app").rate()
    journal = app.journal("app")
    app.close()
    new = write_files(tmp_path / "new", {"app.py": "RATE = 2\n\ndef rate() -> int:\n    "
                                         "return 7\n"})
    result = run_distdev("replay", journal, "--source", new)
    assert result.returncode == 0, result.stderr
    assert "replays every event of the journal, but" in result.stderr
    assert "global 'RATE' holds 2" in result.stderr, result.stderr
