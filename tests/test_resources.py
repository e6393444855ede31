"""Resources in one process (``App``, as ``distdev dev``, tests and the debugger run them):
declared at build time as nodes of the service tree, held as proxies that cross membranes,
called as journaled call-outs of the caller, their build-time content kept; secrets journaled
as references only. The same under real processes: ``test_resources_up.py``."""

from __future__ import annotations

import decimal
import shutil
from pathlib import Path

import pytest
from support import REPO, run_distdev, write_files

from distdev import App, ExportError, PhaseError, ServiceIdClashError, read_journal, replay
from distdev.build import read_manifest
from distdev.errors import DistdevError
from distdev.journal import CallOut, ResultIn
from distdev.resources import ResourceError, SecretStore
from distdev.resources._host import Declared, ResourceHost
from distdev.resources._sql import postgres_placeholders

LIBRARY = REPO / "tests" / "apps" / "library"


@pytest.fixture
def library(tmp_path: Path) -> App:
    source = tmp_path / "library"
    shutil.copytree(LIBRARY, source)
    app = App(source / "app.py", out=tmp_path / "build", state=tmp_path / "state").start()
    yield app
    app.close()


def test_resources_are_nodes_of_the_tree_with_their_kind(library: App) -> None:
    manifest = read_manifest(library.out)
    kinds = {r.id: (r.parent, r.kind) for r in manifest.resources}
    assert kinds == {"app/catalogue": ("app", "sql"), "app/members": ("app", "kv"),
                     "app/signing-key": ("app", "secret")}
    catalogue = manifest.resource("app/catalogue")
    assert catalogue is not None and catalogue.options == {"engine": "sqlite"}
    assert [e.name for e in catalogue.exports] == ["execute", "query", "query_one",
                                                   "executescript", "transaction"]
    # Holding a proxy is the capability: the manifest's edges include the resources.
    assert set(manifest.service("app/loans").proxies) == {"app/catalogue", "app/members",
                                                          "app/signing-key"}


def test_build_time_rows_are_the_deployed_content(library: App) -> None:
    assert library.service("app").titles() == ["Dune", "Emma", "Ulysses"]
    assert library.service("app").add_book("Walden", 1) == 1
    assert library.service("app").titles()[-1] == "Walden"


def test_a_resource_call_is_a_journaled_call_out_of_the_caller(library: App) -> None:
    signature = library.service("app").lend("ann", "Dune")
    events = read_journal(library.journal("app/loans")).events
    calls = [e for e in events if isinstance(e, CallOut)]
    assert [(c.target, c.export) for c in calls] == [
        ("app/members", "get"), ("app/catalogue", "transaction"), ("app/signing-key", "reveal")]
    results = [e.value for e in events if isinstance(e, ResultIn)]
    assert results[0] == {"name": "Ann", "since": 2019}
    assert results[1] == [1]
    assert results[2] == {"distdev.secret": ["app/signing-key", 1]}  # a reference, no value
    assert signature in library.state("app/loans")["receipts"]
    copies = library.service("app/catalogue").query_one(
        "SELECT copies FROM books WHERE title = ?", ["Dune"])
    assert copies == (1,)


def test_the_caller_replays_without_the_resource(library: App, tmp_path: Path) -> None:
    library.service("app").titles()
    library.service("app").add_book("Walden", 1)
    library.service("app").titles()
    live = library.state("app")
    library.close()
    shutil.rmtree(tmp_path / "state" / "resources")  # no database anywhere
    shutil.rmtree(tmp_path / "build" / "resources")
    restored = replay(tmp_path / "state" / "app" / "journal.cbor")
    assert restored.state() == live
    assert restored.state()["last_titles"] == ["Dune", "Emma", "Ulysses", "Walden"]


def test_a_secret_replays_only_with_its_store(library: App, tmp_path: Path) -> None:
    signature = library.service("app").lend("ann", "Emma")
    library.close()
    journal = tmp_path / "state" / "app" / "loans" / "journal.cbor"
    with pytest.raises(DistdevError, match=r"--secrets DIR"):
        replay(journal)
    restored = replay(journal, secrets=SecretStore(tmp_path / "state" / "secrets").read)
    assert restored.state()["receipts"] == [signature]
    value = (tmp_path / "build" / "secrets" / "app" / "signing-key" / "1").read_bytes()
    assert value not in journal.read_bytes()
    assert (tmp_path / "build" / "secrets" / "app" / "signing-key" / "1").stat().st_mode \
        & 0o777 == 0o600


def test_replay_command_says_to_pass_the_secret_store(library: App, tmp_path: Path) -> None:
    library.service("app").lend("ann", "Dune")
    library.close()
    journal = tmp_path / "state" / "app" / "loans" / "journal.cbor"
    refused = run_distdev("replay", journal, cwd=tmp_path)
    assert refused.returncode == 1
    assert "app/loans revealed secret app/signing-key" in refused.stderr
    assert "--secrets DIR" in refused.stderr
    replayed = run_distdev("replay", journal, "--secrets", tmp_path / "state" / "secrets",
                           "--json", cwd=tmp_path)
    assert replayed.returncode == 0, replayed.stderr
    assert '"receipts"' in replayed.stdout


def test_key_value_values_come_back_as_they_were_put(library: App) -> None:
    members = library.service("app/members")
    value = {"tags": ("a", "b"), "balance": decimal.Decimal("9.50"), "raw": b"\x00\xff",
             "none": None}
    members.put("member:bob", value)
    members.put("member:cy", [1, 2])
    members.put("other", 3)
    assert members.get("member:bob") == value
    assert members.get("missing", "default") == "default"
    assert [k for k, _ in members.scan("member:")] == ["member:ann", "member:bob", "member:cy"]
    assert members.delete("member:cy") is True
    assert members.delete("member:cy") is False
    assert len(members.scan()) == 3


def test_a_failed_call_changes_nothing(library: App) -> None:
    catalogue = library.service("app/catalogue")
    import sqlite3

    with pytest.raises(sqlite3.OperationalError):
        catalogue.transaction([("INSERT INTO books (title, copies) VALUES ('X', 1)", []),
                               ("INSERT INTO nowhere VALUES (1)", [])])
    assert catalogue.query_one("SELECT count(*) FROM books WHERE title = 'X'") == (0,)


def test_a_proxy_reaches_only_the_kinds_methods(library: App) -> None:
    with pytest.raises(ExportError, match="executescript"):
        library.service("app/catalogue").drop()  # type: ignore[attr-defined]
    with pytest.raises(ExportError):
        library.service("app/signing-key").value(1)  # distdev's own, not the proxy's


@pytest.mark.parametrize("declaration, error, message", [
    ('resources.sql("db", engine="mysql")', ResourceError, "'sqlite' .* or 'postgres'"),
    ('resources.secret("k")', ResourceError, "generate=N .* or from_env"),
    ('resources.secret("k", generate=4)', ResourceError, "16 to 1024"),
    ('resources.kv("kv", size=3)', TypeError, "unexpected keyword argument 'size'"),
    ('resources.kv("bad name")', DistdevError, "cannot name a service"),
    ('resources.kv("dup"); resources.sql("dup")', ServiceIdClashError, "unique among"),
    ('resources.secret("k", generate=32).reveal()', ResourceError, "at build time"),
])
def test_wrong_declarations_are_refused_saying_what_to_do(
        tmp_path: Path, declaration: str, error: type[Exception], message: str) -> None:
    write_files(tmp_path, {"app.py": f"from distdev import resources\n{declaration}\n"})
    app = App(tmp_path / "app.py", out=tmp_path / "build", state=tmp_path / "state")
    with pytest.raises(error, match=message):
        app.build()
    app.close()


def test_declaring_at_runtime_is_refused(tmp_path: Path) -> None:
    write_files(tmp_path, {"app.py": """
        from distdev import resources

        def late() -> None:
            resources.kv("late")
    """})
    app = App(tmp_path / "app.py", out=tmp_path / "build", state=tmp_path / "state").start()
    try:
        with pytest.raises(PhaseError, match="at build time"):
            app.service("app").late()
    finally:
        app.close()


def test_a_resource_declared_in_a_child_service(tmp_path: Path) -> None:
    write_files(tmp_path, {
        "app.py": """
            from distdev import import_service
            shelf = import_service("./shelf.py")

            def count() -> int:
                return shelf.count()
        """,
        "shelf.py": """
            from distdev import resources
            db = resources.sql("books")
            db.execute("CREATE TABLE t (x)")

            def count() -> int:
                db.execute("INSERT INTO t VALUES (1)")
                return db.query_one("SELECT count(*) FROM t")[0]
        """})
    app = App(tmp_path / "app.py", out=tmp_path / "build", state=tmp_path / "state").start()
    try:
        assert [app.service("app").count() for _ in range(2)] == [1, 2]
        assert read_manifest(tmp_path / "build").resources[0].id == "app/shelf/books"
    finally:
        app.close()


def test_a_re_sent_call_is_answered_from_its_record(tmp_path: Path) -> None:
    host = ResourceHost(Declared("app/db", "app", "sql", {"engine": "sqlite"}), tmp_path)
    host.handle_call("app", "c", "execute", ["CREATE TABLE t (x)"], {}, 1)
    for _ in range(3):  # the same call (caller, seq, arguments), delivered three times
        assert host.handle_call("app", "c", "execute", ["INSERT INTO t VALUES (1)"], {}, 2) == 1
    assert host.handle_call("app", "c", "query", ["SELECT count(*) FROM t"], {}, 3) == [
        host.handle_call("app", "c", "query", ["SELECT 1"], {}, None)[0]]
    # Another call under a reused id (a caller cut back after a crash) runs anew.
    host.handle_call("app", "c", "execute", ["INSERT INTO t VALUES (2)"], {}, 2)
    assert host.handle_call("app", "c", "query_one", ["SELECT count(*) FROM t"], {},
                            None) == host.handle_call("app", "c", "query_one", ["SELECT 2"], {})
    host.close()


@pytest.mark.parametrize("sql, expected", [
    ("SELECT * FROM t WHERE a = ? AND b = ?", "SELECT * FROM t WHERE a = %s AND b = %s"),
    ("SELECT '?', \"?\" FROM t WHERE a = ?", "SELECT '?', \"?\" FROM t WHERE a = %s"),
    ("SELECT 'it''s ?' WHERE x LIKE 'a%' AND y = ?", "SELECT 'it''s ?' WHERE x LIKE 'a%%' AND y = %s"),
    ("SELECT 1 -- what?\n, ?", "SELECT 1 -- what?\n, %s"),
    ("SELECT 10 % 3", "SELECT 10 %% 3"),
])
def test_postgres_placeholders(sql: str, expected: str) -> None:
    assert postgres_placeholders(sql) == expected


def test_graph_shows_resources_under_their_service(tmp_path: Path) -> None:
    source = tmp_path / "library"
    shutil.copytree(LIBRARY, source)
    shown = run_distdev("graph", source / "app.py", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "app/catalogue  sql (sqlite)" in shown.stdout
    assert "app/signing-key  secret (generated)" in shown.stdout
    as_json = run_distdev("graph", source / "app.py", "--json", cwd=tmp_path)
    import json

    listed = {r["id"]: r["kind"] for r in json.loads(as_json.stdout)["resources"]}
    assert listed == {"app/catalogue": "sql", "app/members": "kv", "app/signing-key": "secret"}


def test_a_write_through_query_is_recorded_like_any_write(tmp_path: Path) -> None:
    host = ResourceHost(Declared("app/db", "app", "sql", {"engine": "sqlite"}), tmp_path)
    host.handle_call("app", "c", "execute", ["CREATE TABLE t (x INTEGER PRIMARY KEY)"], {}, 1)
    for _ in range(2):  # delivered twice: inserted once, the same row answered
        assert host.handle_call("app", "c", "query", ["INSERT INTO t VALUES (7) RETURNING x"],
                                {}, 2) == [host.handle_call("app", "c", "query_one",
                                                            ["SELECT 7"], {})]
    assert host.handle_call("app", "c", "query_one", ["SELECT count(*) FROM t"], {}) == \
        host.handle_call("app", "c", "query_one", ["SELECT 1"], {})
    host.close()


def test_check_replays_a_service_that_revealed_a_secret_with_its_store(
        library: App, tmp_path: Path) -> None:
    library.service("app").lend("ann", "Dune")
    library.close()
    state = tmp_path / "state"
    refused = run_distdev("check", state, cwd=tmp_path)
    assert refused.returncode == 1 and "--secrets DIR" in refused.stdout + refused.stderr
    checked = run_distdev("check", state, "--secrets", state / "secrets", "--json", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    import json

    assert {v["result"] for v in json.loads(checked.stdout)} == {"compatible"}
