"""A PostgreSQL server of distdev's own, for ``resources.sql(engine="postgres")``.

The machine's PostgreSQL (Debian's ``postgresql``: ``initdb``, ``pg_ctl``, ``pg_dump``) runs a
cluster in a folder: ``<folder>/pgdata``, listening on a Unix socket only (no TCP port at all:
``listen_addresses=''``), in a folder of mode 0700 that only this user can reach. A build and
``distdev dev`` run a throwaway one in a temporary folder; a deployment one in its state folder
(``STATE/resources/<id>/``), kept across ``up``s. PostgreSQL refuses to run as root; as root,
the server runs as the ``postgres`` user that the package creates, and since that user cannot
reach into root's folders, its cluster is then in ``/var/lib/postgresql/distdev/<digest of the
folder>/`` (the folder's ``cluster`` file names it).

What a build wrote is dumped as SQL (``pg_dump --inserts``: statements any connection can run,
no ``COPY`` from standard input), and a new cluster, or a database that distdev has not used
yet, starts from it: build-time state is deployed state.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ._kinds import ResourceError

__all__ = ["PostgresServer", "postgres_bin", "load_dump", "is_fresh", "remove_cluster",
           "psycopg_module",
           "DUMP_FILE"]

DUMP_FILE = "dump.sql"
_UNIX_PATH_MAX = 90  # the socket's path (+ "/.s.PGSQL.5432") must fit in sun_path


def postgres_bin(tool: str) -> Path:
    """Where PostgreSQL's ``tool`` is: ``$DISTDEV_POSTGRES_BIN``, the newest Debian install,
    or the ``PATH``; else an error that says what to install."""
    folders = [os.environ.get("DISTDEV_POSTGRES_BIN", "")]
    folders += sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                      key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit()
                      else 0, reverse=True)
    for folder in folders:
        if folder and (Path(folder) / tool).is_file():
            return Path(folder) / tool
    found = shutil.which(tool)
    if found:
        return Path(found)
    raise ResourceError(
        f"resources.sql(engine='postgres') needs PostgreSQL's {tool}, which is not installed: "
        "apt-get install postgresql (or set DISTDEV_POSTGRES_BIN to its bin folder), or pass "
        "`distdev up --postgres DSN` to use a server of your own")


class PostgresServer:
    """A PostgreSQL cluster in ``folder``, started and stopped by distdev."""

    def __init__(self, folder: Path, log: Callable[[str], None] = lambda _: None) -> None:
        self.folder = Path(folder).resolve()
        self.log = log
        self._as_postgres = os.geteuid() == 0  # PostgreSQL refuses to run as root
        home = _postgres_home(self.folder) if self._as_postgres else self.folder
        self.data = home / "pgdata"
        self.socket_dir = _socket_folder(home)

    @property
    def dsn(self) -> str:
        return f"host={self.socket_dir} port=5432 user=distdev dbname=postgres"

    def start(self) -> bool:
        """Start the server (creating the cluster first if there is none); True if the
        cluster is new. A server a killed process left running is used as it is."""
        created = False
        self.folder.mkdir(parents=True, exist_ok=True)
        if self._as_postgres:
            (self.folder / "cluster").write_text(f"{self.data.parent}\n")
            self.data.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._own(self.data.parent)
        self.socket_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not (self.data / "PG_VERSION").is_file():
            shutil.rmtree(self.data, ignore_errors=True)
            self.data.mkdir(mode=0o700)
            self._own(self.data)
            self._run("initdb", "-D", str(self.data), "-U", "distdev", "-A", "trust",
                      "-E", "UTF8", "--no-instructions")
            created = True
        self._own(self.socket_dir)
        if self._running():
            self.log(f"PostgreSQL in {self.data} is running already: using it")
            return created
        options = (f"-k {self.socket_dir} -c listen_addresses='' "
                   "-c unix_socket_permissions=0700")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.data / "server.log"),
                  "-o", options, "-w", "-t", "60", "start")
        self.log(f"PostgreSQL started in {self.data} (socket in {self.socket_dir})")
        return created

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(ResourceError):
                self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop")

    def dump(self, path: Path) -> None:
        """Write the database's schema and rows as SQL statements to ``path``."""
        done = self._run("pg_dump", "-h", str(self.socket_dir), "-U", "distdev", "--inserts",
                         "--no-owner", "--no-privileges", "postgres")
        path.parent.mkdir(parents=True, exist_ok=True)
        # Newer pg_dumps fence a dump in psql's \restrict ... \unrestrict: meta-commands a
        # connection cannot run, and no part of the content.
        lines = [line for line in done.stdout.splitlines(keepends=True)
                 if not line.startswith(("\\restrict", "\\unrestrict"))]
        path.write_text("".join(lines))

    def _running(self) -> bool:
        if not (self.data / "postmaster.pid").exists():
            return False
        status = subprocess.run(self._command("pg_ctl", "-D", str(self.data), "status"),
                                capture_output=True, text=True)
        return status.returncode == 0

    def _command(self, tool: str, *args: str) -> list[str]:
        command = [str(postgres_bin(tool)), *args]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        return command

    def _run(self, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(self._command(tool, *args), capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, cwd="/")
        if done.returncode != 0:
            said = (done.stderr or done.stdout).strip().splitlines()
            raise ResourceError(f"PostgreSQL's {tool} failed in {self.folder}: "
                                f"{said[-1] if said else done.returncode}")
        return done

    def _own(self, path: Path) -> None:
        if self._as_postgres:
            user = pwd.getpwnam("postgres")
            os.chown(path, user.pw_uid, user.pw_gid)


def _postgres_home(folder: Path) -> Path:
    """Where the ``postgres`` user keeps the cluster of ``folder`` (one it can reach)."""
    digest = hashlib.sha256(str(folder).encode()).hexdigest()[:16]
    return Path("/var/lib/postgresql/distdev") / digest


def remove_cluster(folder: Path) -> None:
    """Remove the cluster of ``folder`` kept outside it (as root), if there is one."""
    named = Path(folder) / "cluster"
    if named.is_file():
        shutil.rmtree(named.read_text().strip(), ignore_errors=True)


def _socket_folder(folder: Path) -> Path:
    """The folder of the server's socket: inside ``folder`` when the path is short enough,
    else a private folder named after it under the temporary folder."""
    inside = folder / "run"
    if len(str(inside)) <= _UNIX_PATH_MAX:
        return inside
    digest = hashlib.sha256(str(folder).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"distdev-pg-{os.getuid()}" / digest


def psycopg_module() -> Any:
    """The ``psycopg`` module, in its pure-Python implementation unless the user chose one.

    distdev gives service code its own ``datetime`` classes (their ``now`` is journaled); a C
    extension imported after that checks their size against the real ones and warns that it
    may not work. The Python implementation uses whatever ``datetime`` holds, as the rest of
    the process does."""
    os.environ.setdefault("PSYCOPG_IMPL", "python")
    try:
        import psycopg
    except ImportError:
        raise ResourceError(
            "a SQL resource with engine='postgres' needs psycopg: pip install "
            "'distdev[postgres]'") from None
    return psycopg


def is_fresh(dsn: str) -> bool:
    """Whether the database has never been a distdev resource (no ``distdev_calls``)."""
    psycopg = psycopg_module()

    with psycopg.connect(dsn, autocommit=True) as connection:
        row = connection.execute("SELECT to_regclass('public.distdev_calls')").fetchone()
    return row is None or row[0] is None


def load_dump(dsn: str, dump: Path) -> None:
    """Run a dump's statements on the database, in one transaction, on a connection of its
    own (a dump sets the session's ``search_path``)."""
    psycopg = psycopg_module()

    with psycopg.connect(dsn) as connection:
        connection.execute(dump.read_text())
        connection.commit()
