"""Resources under the local engine (`distdev up`): each served by a supervised process of its
own over the authenticated wire; rows written at build time returned after `up`, live content
kept by a later `up`; a caller's journal replayed in an empty folder with no database running;
a secret's bytes nowhere but in the owner-only store, rotated with `distdev secret set`."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
from support import REPO, run_distdev
from support.engines import build, running, wait_until

from distdev.engines import AuthenticationError, Connection
from distdev.engines._keys import read_key_file

# Every test here runs a deployment under `distdev up` (some with PostgreSQL): `make test`.
pytestmark = pytest.mark.slow

LIBRARY = REPO / "tests" / "apps" / "library"


@pytest.fixture
def library_build(tmp_path: Path) -> Path:
    source = tmp_path / "library"
    shutil.copytree(LIBRARY, source)
    out = tmp_path / "build"
    build(source / "app.py", out)
    return out


def test_build_time_rows_are_returned_after_up_and_live_content_kept(
        library_build: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    with running(library_build, state) as deployment:
        assert deployment.call("app", "titles") == ["Dune", "Emma", "Ulysses"]
        rows = deployment.status()
        assert {sid: row["kind"] for sid, row in rows.items()} == {
            "app": "service", "app/loans": "service", "app/catalogue": "sql",
            "app/members": "kv", "app/signing-key": "secret"}
        assert all(row["state"] == "ready" for row in rows.values())
        assert deployment.call("app", "add_book", "Walden", 1) == 1
        deployment.call("app", "join", "bob", "Bob")
        assert (state / "resources" / "app" / "catalogue" / "db.sqlite").is_file()
    with running(library_build, state) as deployment:  # a later up keeps the live content
        assert deployment.call("app", "titles") == ["Dune", "Emma", "Ulysses", "Walden"]
        assert isinstance(deployment.call("app", "lend", "bob", "Walden"), str)


def test_a_caller_replays_in_an_empty_folder_with_no_database(
        library_build: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    with running(library_build, state) as deployment:
        deployment.call("app", "add_book", "Walden", 1)
        deployment.call("app", "titles")
        live = deployment.call("app", "titles")
    empty = tmp_path / "empty"
    empty.mkdir()
    journal = empty / "journal.cbor"
    shutil.copyfile(state / "app" / "journal.cbor", journal)
    shutil.rmtree(state)  # no database, no deployment, no build anywhere it could look
    shutil.rmtree(library_build)
    replayed = run_distdev("replay", journal, "--json", cwd=empty)
    assert replayed.returncode == 0, replayed.stderr
    assert json.loads(replayed.stdout)["state"]["last_titles"] == live
    assert live == ["Dune", "Emma", "Ulysses", "Walden"]


def test_a_secret_is_nowhere_but_in_its_store_and_rotates(
        library_build: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    stores = [library_build / "secrets", state / "secrets"]
    with running(library_build, state) as deployment:
        first = (library_build / "secrets" / "app" / "signing-key" / "1").read_text()
        assert deployment.call("app/loans", "key_digest") == _digest(first)
        deployment.call("app", "lend", "ann", "Dune")
        rotated = "a-new-value-" + hashlib.sha256(b"rotation").hexdigest()
        result = run_distdev("secret", "set", "signing-key", "--state", state,
                             input_text=rotated)
        assert result.returncode == 0, result.stderr
        assert "version 2" in result.stderr + result.stdout
        assert deployment.call("app/loans", "key_digest") == _digest(rotated)
        deployment.call("app", "lend", "ann", "Emma")
    for value in (first, rotated):
        found = [path for base in (library_build, state) for path in base.rglob("*")
                 if path.is_file() and value.encode() in path.read_bytes()
                 and not any(path.is_relative_to(store) for store in stores)]
        assert found == [], f"the secret's bytes are in {found}"
    for store in stores:
        for path in [store, *store.rglob("*")]:
            mode = path.stat().st_mode & 0o777
            assert mode == (0o700 if path.is_dir() else 0o600), (path, oct(mode))
    # The live journal replays with the deployment's store, to both versions.
    replayed = run_distdev("replay", state / "app" / "loans" / "journal.cbor", "--json",
                           "--secrets", state / "secrets", cwd=tmp_path)
    assert replayed.returncode == 0, replayed.stderr
    assert len(json.loads(replayed.stdout)["state"]["receipts"]) == 2


def test_only_holders_of_a_proxy_reach_a_resource(library_build: Path, tmp_path: Path) -> None:
    with running(library_build, tmp_path / "state") as deployment:
        # The operator (outside key) may call it, as `distdev call` does.
        assert deployment.call("app/members", "get", "member:ann") == {"name": "Ann",
                                                                       "since": 2019}
        called = run_distdev("call", "app/catalogue.query", '"SELECT count(*) FROM books"',
                             "--state", deployment.state)
        assert called.returncode == 0, called.stderr
        assert json.loads(called.stdout) == [[3]]
        # Its key file admits the services holding a proxy to it, and no other.
        keys = read_key_file(deployment.info.key_file("app/catalogue"), "app/catalogue")
        assert keys.key_from("app") is not None and keys.key_from("app/loans") is not None
        assert keys.key_to("app") is None  # it calls no one
        with pytest.raises(AuthenticationError, match="proof is not app/loans"):
            Connection(deployment.address("app/catalogue"), _ForgedKey(), "app/loans", 10,
                       service="app/catalogue")


def test_a_killed_resource_process_is_restarted_and_loses_nothing(
        library_build: Path, tmp_path: Path) -> None:
    with running(library_build, tmp_path / "state") as deployment:
        deployment.call("app", "add_book", "Walden", 1)
        deployment.kill_and_wait_for_restart("app/catalogue")
        assert deployment.call("app", "titles")[-1] == "Walden"
        wait_until(lambda: deployment.status()["app/catalogue"]["restarts"] == 1, 30,
                   "the restart to be counted")


class _ForgedKey:
    remedy = ""

    def key_to(self, callee: str) -> bytes:
        return os.urandom(32)


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


# ---------------------------------------------------------------------------------------------
# PostgreSQL: the machine's server, run by distdev in the state folder, or one of the user's.

POSTGRES_APP = '''
    """A catalogue on {engine}: schema and rows written at build time."""
    from decimal import Decimal

    from distdev import resources

    db = resources.sql("catalogue", engine="{engine}")
    db.executescript("""
        CREATE TABLE books (id INTEGER PRIMARY KEY, title TEXT NOT NULL, price NUMERIC(6, 2));
        INSERT INTO books VALUES (1, 'Dune', 9.50);
    """)
    db.execute("INSERT INTO books VALUES (?, ?, ?)", [2, "Emma's ? mark", Decimal("3.25")])

    def books() -> list:
        return [[title, "%.2f" % float(price)] for title, price in
                db.query("SELECT title, price FROM books ORDER BY id")]

    def add(id: int, title: str) -> int:
        return db.execute("INSERT INTO books (id, title, price) VALUES (?, ?, 1)", [id, title])
'''


def _postgres_or_skip() -> None:
    from distdev.resources import ResourceError
    from distdev.resources._postgres import postgres_bin

    try:
        postgres_bin("initdb")
    except ResourceError as missing:
        pytest.skip(f"PostgreSQL is not installed here: {missing}")


@pytest.mark.parametrize("engine", ["sqlite", "postgres"])
def test_rows_written_at_build_time_are_queried_after_up(tmp_path: Path, engine: str) -> None:
    if engine == "postgres":
        _postgres_or_skip()
    from support import write_files

    write_files(tmp_path / "src", {"app.py": POSTGRES_APP.replace("{engine}", engine)})
    out, state = tmp_path / "build", tmp_path / "state"
    build(tmp_path / "src" / "app.py", out)
    seeded = [["Dune", "9.50"], ["Emma's ? mark", "3.25"]]
    with running(out, state) as deployment:
        assert deployment.call("app", "books") == seeded
        assert deployment.call("app", "add", 3, "Walden") == 1
        assert deployment.status()["app/catalogue"]["kind"] == "sql"
    with running(out, state) as deployment:  # the live content, not the build's again
        assert deployment.call("app", "books") == [*seeded, ["Walden", "1.00"]]
    replayed = run_distdev("replay", state / "app" / "journal.cbor", "--json", cwd=tmp_path)
    assert replayed.returncode == 0, replayed.stderr
    if engine == "postgres":
        from distdev.resources import remove_cluster

        remove_cluster(state / "resources" / "app" / "catalogue")  # kept outside it, as root


def test_up_uses_a_postgres_server_it_is_given(tmp_path: Path) -> None:
    _postgres_or_skip()
    from support import write_files

    from distdev.resources import PostgresServer, remove_cluster

    server = PostgresServer(tmp_path / "theirs")
    server.start()
    try:
        write_files(tmp_path / "src", {"app.py": POSTGRES_APP.replace("{engine}", "postgres")})
        out, state = tmp_path / "build", tmp_path / "state"
        build(tmp_path / "src" / "app.py", out)
        with running(out, state, "--postgres", server.dsn) as deployment:
            assert deployment.call("app", "books")[0] == ["Dune", "9.50"]
            deployment.call("app", "add", 3, "Walden")
        with running(out, state, "--postgres", f"app/catalogue={server.dsn}") as deployment:
            assert len(deployment.call("app", "books")) == 3  # loaded once, then kept
        assert not (state / "resources" / "app" / "catalogue" / "pgdata").exists()
        refused = run_distdev("up", out, "--state", tmp_path / "other", "--postgres",
                              f"app/nothing={server.dsn}")
        assert refused.returncode == 1
        assert "no PostgreSQL resource of this build (app/catalogue)" in refused.stderr
    finally:
        server.stop()
        remove_cluster(server.folder)


def test_writes_happen_once_across_kill_9_of_the_resource_process(
        library_build: Path, tmp_path: Path) -> None:
    import threading

    with running(library_build, tmp_path / "state") as deployment:
        acknowledged: list[int] = []
        failures: list[BaseException] = []

        def writer() -> None:
            try:
                for i in range(40):
                    assert deployment.call("app", "add_book", f"book-{i}", 1) == 1
                    acknowledged.append(i)
            except BaseException as exc:  # reported below
                failures.append(exc)

        thread = threading.Thread(target=writer)
        thread.start()
        wait_until(lambda: len(acknowledged) >= 10 or failures, 60, "ten acknowledged writes")
        deployment.kill_and_wait_for_restart("app/catalogue")
        thread.join(120)
        assert not thread.is_alive() and failures == [], failures
        titles = deployment.call("app", "titles")
        written = [t for t in titles if t.startswith("book-")]
        assert written == [f"book-{i}" for i in range(40)]  # each once, in order


def test_a_secret_from_the_environment_is_read_at_deploy(tmp_path: Path) -> None:
    from support import write_files

    write_files(tmp_path / "src", {"app.py": '''
        import hashlib

        from distdev import resources

        key = resources.secret("api-key", from_env="LIBRARY_API_KEY")


        def digest() -> str:
            return hashlib.sha256(key.reveal().encode()).hexdigest()
    '''})
    out, state = tmp_path / "build", tmp_path / "state"
    build(tmp_path / "src" / "app.py", out)
    refused = run_distdev("up", out, "--state", state, "--detach")
    assert refused.returncode == 1
    assert "set LIBRARY_API_KEY" in refused.stderr, refused.stderr
    with running(out, state, env={"LIBRARY_API_KEY": "from-the-environment"}) as deployment:
        assert deployment.call("app", "digest") == _digest("from-the-environment")
    assert not (out / "secrets").exists()  # nothing of it in the build


def test_down_stops_a_postgres_server_that_killed_processes_left(tmp_path: Path) -> None:
    _postgres_or_skip()
    import signal

    from support import write_files

    from distdev.engines.local._deployment import Deployment
    from distdev.resources import PostgresServer, remove_cluster

    write_files(tmp_path / "src", {"app.py": POSTGRES_APP.replace("{engine}", "postgres")})
    out, state = tmp_path / "build", tmp_path / "state"
    build(tmp_path / "src" / "app.py", out)
    folder = state / "resources" / "app" / "catalogue"
    try:
        with running(out, state) as deployment:
            assert deployment.call("app", "books")[0] == ["Dune", "9.50"]
            data = str(PostgresServer(folder).data)
            assert _processes_naming(data), "no PostgreSQL server runs"
            live = Deployment.load(state)
            os.kill(live.supervisor, signal.SIGKILL)  # nobody stops anything in order now
            os.kill(live.services["app/catalogue"].pid, signal.SIGKILL)
            wait_until(lambda: not _alive(live.services["app/catalogue"].pid), 30,
                       "the resource process to die")
            assert _processes_naming(data), "the server went with its process"
        wait_until(lambda: not _processes_naming(data), 60, "the server to stop")  # `down`
    finally:
        remove_cluster(folder)


def _processes_naming(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _alive(pid: int | None) -> bool:
    from distdev.engines.local._supervisor import pid_alive

    return pid_alive(pid)
