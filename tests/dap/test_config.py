"""Launch configurations on their own: the ``distdev`` schema validated, and planned into the
runner's command line (``_config.parse_launch``, ``plan_launch``, ``debugpy_launch``)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from dap.dap_client import FIXTURES

import distdev
from distdev.dap_adapter._config import (
    RUNNER,
    ConfigError,
    debugpy_launch,
    parse_launch,
    plan_launch,
)

COUNTER = FIXTURES / "counter"


def test_parse_launch_reads_camel_case_fields_and_ignores_vscodes_own() -> None:
    config = parse_launch({"type": "distdev", "request": "launch", "name": "Debug app",
                           "__sessionId": "1234", "app": "shop/app.py", "stopOnEntry": True,
                           "env": {"X": "1", "DROP": None}})
    assert (config.app, config.stop_on_entry, config.env) == (
        "shop/app.py", True, {"X": "1", "DROP": None})
    assert config.journal is None and config.port is None


@pytest.mark.parametrize("arguments, expected", [
    ({}, '"app"'),
    ({"app": "a.py", "journal": "j.cbor"}, "not both"),
    ({"app": "a.py", "stopAtEvent": 3}, '"stopAtEvent" applies to a replay'),
    ({"journal": "j.cbor", "stopOnEntry": True}, '"stopOnEntry" applies to an application'),
    ({"app": "a.py", "port": 70000}, '"port" must be between 0 and 65535'),
    ({"app": "a.py", "port": "eighty"}, 'launch configuration field "port"'),
    ({"app": 3}, 'launch configuration field "app"'),
])
def test_parse_launch_refuses_a_configuration_saying_what_to_write(
    arguments: dict[str, Any], expected: str,
) -> None:
    with pytest.raises(ConfigError) as refused:
        parse_launch(arguments)
    assert expected in str(refused.value)


def test_plan_launch_of_an_app_resolves_it_against_cwd_with_default_folders(
    tmp_path: Path,
) -> None:
    app = tmp_path / "shop" / "app.py"
    app.parent.mkdir()
    app.write_text("x = 1\n")
    launch = plan_launch(parse_launch({"app": "shop/app.py", "cwd": str(tmp_path), "port": 8080,
                                       "stopOnEntry": True}))
    base = tmp_path.resolve()
    assert launch.args == ["dev", str(app.resolve()), "--out", str(base / ".distdev" / "build"),
                           "--state", str(base / ".distdev" / "dev-state"), "--port", "8080"]
    assert (launch.mode, launch.cwd, launch.entry_file, launch.stop_on_entry) == (
        "dev", str(base), str(app.resolve()), True)


def test_plan_launch_refuses_an_app_that_is_missing_or_not_a_python_file(
    tmp_path: Path,
) -> None:
    (tmp_path / "notes.txt").write_text("")
    with pytest.raises(ConfigError, match=r'"app" "nope.py": no such file .*relative to "cwd"'):
        plan_launch(parse_launch({"app": "nope.py", "cwd": str(tmp_path)}))
    with pytest.raises(ConfigError, match="a root service is a .py file"):
        plan_launch(parse_launch({"app": "notes.txt", "cwd": str(tmp_path)}))
    with pytest.raises(ConfigError, match='"cwd" .*: no such folder'):
        plan_launch(parse_launch({"app": "a.py", "cwd": str(tmp_path / "gone")}))


def build_journal(app_folder: Path, tmp_path: Path) -> Path:
    app = distdev.App(app_folder / "app.py", out=tmp_path / "out", state=tmp_path / "state")
    app.start().close()
    return tmp_path / "out" / "services" / "app" / "counter" / "journal.cbor"


def test_plan_launch_of_a_journal_replays_its_source_on_disk_while_unchanged(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "counter"
    shutil.copytree(COUNTER, folder)
    journal = build_journal(folder, tmp_path)
    contents = distdev.read_journal(journal)
    events = contents.events
    launch = plan_launch(parse_launch({"journal": str(journal), "stopAtEvent": 2}))
    assert launch.mode == "replay" and launch.entry_file == str(folder.resolve() / "counter.py")
    assert launch.args == ["replay", str(journal), "--stop-at", "2", "--source",
                           str(folder.resolve())]
    # The replay runs under the seed the journal was recorded with.
    assert launch.env.get("PYTHONHASHSEED") == contents.header.hash_seed
    assert launch.notes == []

    with pytest.raises(ConfigError, match=f"has events 1 to {events[-1].seq}"):
        plan_launch(parse_launch({"journal": str(journal), "stopAtEvent": events[-1].seq + 1}))

    # Once the code has changed, the replay runs the code the journal carries.
    (folder / "counter.py").write_text((folder / "counter.py").read_text() + "\n# edited\n")
    changed = plan_launch(parse_launch({"journal": str(journal)}))
    assert "--source" not in changed.args and changed.entry_file is None
    assert "differs from (or is missing under)" in changed.notes[0]


def test_plan_launch_refuses_a_file_that_is_not_a_journal(tmp_path: Path) -> None:
    bad = tmp_path / "journal.cbor"
    bad.write_bytes(b"not a journal")
    with pytest.raises(ConfigError, match="cannot be replayed"):
        plan_launch(parse_launch({"journal": str(bad)}))


def test_debugpy_launch_runs_the_runner_outside_my_code_keeping_the_clients_own_keys(
    tmp_path: Path,
) -> None:
    app = tmp_path / "app.py"
    app.write_text("x = 1\n")
    arguments = {"type": "distdev", "request": "launch", "name": "Debug app", "app": str(app),
                 "console": "integratedTerminal", "stopOnEntry": True}
    launch = debugpy_launch(plan_launch(parse_launch(arguments)), arguments)
    assert (launch["type"], launch["request"], launch["module"]) == ("python", "launch", RUNNER)
    assert launch["name"] == "Debug app" and launch["console"] == "integratedTerminal"
    assert "app" not in launch and launch["stopOnEntry"] is False  # the relay stops on entry
    assert (launch["justMyCode"], launch["subProcess"]) == (True, False)
    assert {"module": "distdev", "include": False} in launch["rules"]
    assert launch["args"][:2] == ["dev", str(app.resolve())]
