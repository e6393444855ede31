"""The command line, run as a user runs it: build output, graph, inspect, and errors that are
messages, not tracebacks."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from support import SHOP, run_distdev, write_files

import distdev


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "out"
    result = run_distdev("build", SHOP / "app.py", "-o", out)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return out


def test_build_writes_manifest_secret_journals_and_bundles(built: Path) -> None:
    manifest = json.loads((built / "manifest.json").read_text())
    assert manifest["root"] == "app" and manifest["hash_seed"] == "0"
    secret = built / manifest["secret"]
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert len(secret.read_text().strip()) == 64
    services = {s["id"]: s for s in manifest["services"]}
    assert services["app"]["host"] == {"kind": "process", "http": 8080, "interleave": True,
                                       "max_instances": None}
    assert services["app/billing/ledger"]["parent"] == "app/billing"
    assert services["app/orders"]["proxies"] == ["app/billing", "app/catalog"]
    place = next(e for e in services["app"]["exports"] if e["name"] == "place_order")
    assert place["signature"] == "place_order(user: str, item: str, quantity: int = 1) -> dict"
    assert [p["name"] for p in place["params"]] == ["user", "item", "quantity"]
    for service in services.values():
        assert (built / service["journal"]).is_file()
        for rel in service["bundle"]:
            bundled = built / "services" / service["id"] / "bundle" / rel
            assert bundled.read_bytes() == (SHOP / rel).read_bytes()


def test_graph_of_build_folder_and_of_app_agree(built: Path) -> None:
    from_out = run_distdev("graph", "--json", built)
    from_app = run_distdev("graph", "--json", SHOP / "app.py")
    assert from_out.returncode == 0 and from_app.returncode == 0, from_app.stderr
    a, b = json.loads(from_out.stdout), json.loads(from_app.stdout)
    assert [s["id"] for s in a["services"]] == [s["id"] for s in b["services"]]
    human = run_distdev("graph", built)
    assert "app/billing/ledger" in human.stdout and "http=8080" in human.stdout


def test_inspect_lists_events_with_seq_kind_and_summary(built: Path) -> None:
    journal = built / "services" / "app" / "orders" / "journal.cbor"
    result = run_distdev("inspect", "--json", journal)
    assert result.returncode == 0, result.stderr
    listing = json.loads(result.stdout)
    assert listing["service"] == "app/orders"
    assert [e["seq"] for e in listing["events"]] == list(range(len(listing["events"])))
    assert listing["events"][0]["kind"] == "header"
    connect = next(e for e in listing["events"] if e["kind"] == "call-in")
    assert "connect(<proxy app/catalog>, <proxy app/billing>" in connect["summary"]
    assert len(listing["events"]) == len(distdev.read_journal(journal).events)


def test_journal_check_passes_a_good_journal(built: Path) -> None:
    result = run_distdev("journal", "check", built / "services" / "app" / "journal.cbor")
    assert result.returncode == 0 and "ok" in result.stdout


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["build", "does/not/exist.py"], "no service file"),
        (["graph", "nowhere"], "no service file"),
        (["replay", "missing.cbor"], "no journal at"),
    ],
)
def test_user_errors_exit_1_or_2_with_a_message(
    tmp_path: Path, args: list[str], expected: str
) -> None:
    result = run_distdev(*args, cwd=tmp_path)
    assert result.returncode in (1, 2)
    assert expected in result.stderr
    assert "Traceback" not in result.stderr


def test_build_failure_in_user_code_shows_only_user_frames(tmp_path: Path) -> None:
    root = write_files(tmp_path / "app", {
        "app.py": "from distdev import import_service\nbroken = import_service('./broken.py')\n",
        "broken.py": "def explode():\n    return 1 / 0\n\nexplode()\n",
    })
    result = run_distdev("build", root / "app.py", "-o", tmp_path / "out")
    assert result.returncode == 1
    assert "ZeroDivisionError" in result.stderr
    assert "broken.py" in result.stderr and "return 1 / 0" in result.stderr
    assert "distdev/_" not in result.stderr, "distdev's own frames are hidden"


def test_membrane_error_at_build_is_a_message(tmp_path: Path) -> None:
    root = write_files(tmp_path / "app", {
        "app.py": """
            from distdev import import_service
            child = import_service("./child.py")
            child.take(lambda: 1)
        """,
        "child.py": "def take(callback) -> None:\n    pass\n",
    })
    result = run_distdev("build", root / "app.py", "-o", tmp_path / "out")
    assert result.returncode == 1
    assert "argument 1 of app/child.take is a function" in result.stderr
    assert "Traceback" not in result.stderr


def test_debug_prints_a_launch_configuration_for_an_app_and_a_journal(built: Path) -> None:
    for target, key in ((SHOP / "app.py", "app"),
                        (built / "services" / "app" / "journal.cbor", "journal")):
        result = run_distdev("debug", target)
        assert result.returncode == 0, result.stderr
        (config,) = json.loads(result.stdout)["configurations"]
        assert config["type"] == "distdev" and config["request"] == "launch"
        assert config[key].endswith(str(target.relative_to(target.parents[1])))


def test_help_of_replay_prints_once_even_when_the_command_re_executes_itself(
        built: Path) -> None:
    # run_distdev drops PYTHONHASHSEED, so the command re-executes under the pinned seed.
    result = run_distdev("replay", "--help")
    assert result.returncode == 0
    assert result.stdout.count("usage: distdev replay") == 1, result.stdout


def test_status_into_a_pipe_shows_whole_ids_addresses_and_the_http_port(
        tmp_path: Path) -> None:
    deep = "a_service_with_a_name_long_enough_to_be_cut_on_a_narrow_terminal"
    app = write_files(tmp_path / "app", {
        "app.py": f"""
            from distdev import host, import_service

            host.process(http=8080)
            {deep} = import_service("./{deep}.py")
        """,
        f"{deep}.py": "def ping() -> str:\n    return 'pong'\n",
    })
    out, state = tmp_path / "out", tmp_path / "a-state-folder-whose-path-is-long-too"
    assert run_distdev("build", app / "app.py", "-o", out).returncode == 0
    try:
        up = run_distdev("up", out, "--state", state, "--detach", "--tcp", "--port", "0")
        assert up.returncode == 0, up.stderr
        report = json.loads(run_distdev("status", "--state", state, "--json").stdout)
        shown = run_distdev("status", "--state", state, env={"COLUMNS": "60"})
        assert shown.returncode == 0, shown.stderr
        rows = {line.split()[0]: line.split() for line in shown.stdout.splitlines()[1:]}
        for service in report["services"]:
            row = rows[service["id"]]
            assert service["address"] in row, (service, shown.stdout)
        root = next(s for s in report["services"] if s["id"] == "app")
        assert f"http://127.0.0.1:{root['http']}" in rows["app"], shown.stdout
        assert f"app/{deep}" in rows
    finally:
        run_distdev("down", "--state", state)
