"""Random multi-service programs for the differential test (``test_generated.py``).

A program is a root service that creates two or three children and connects each to every
other, and children whose top levels and exports are random statements drawn from a vocabulary:

* every effect kind the classification table (``distdev.compartment._surface``) journals, and
  the special mechanisms beside it (the environment, ``random``, the clock's stand-ins, file
  reads, ``sys.argv``/``sys.flags``), each called as code would call it and its value kept;
* library IO on the application's own files: ``json``, ``configparser``, ``glob``, ``pathlib``,
  ``os.walk``, relative and absolute ``open``;
* user effects (``@effect``), one of them raising an exception that carries ``.status``;
* state mutations of dicts, lists, sets of strings (their order follows the hash seed) and a
  dataclass;
* calls between services: export k may call any export numbered above it, whichever service
  holds it, so chains nest and come back into a service they passed through (A -> B -> A);
* exceptions raised in one service and caught in another; values that cannot cross a membrane
  (as an argument or as a result) refused and caught; refused actions caught.

``Program.__repr__`` is the program as a corpus case (``harness.Case``), so a shrunk failure
pastes into ``corpus.py``. ``KNOWN_HOLES`` lists vocabulary left out because a corpus case
already shows it failing; ``DISTDEV_FUZZ_HOLES=1`` puts it back.
"""

from __future__ import annotations

import dataclasses
import os
import textwrap
from typing import Any

from hypothesis import strategies as st

# -- the vocabulary -------------------------------------------------------------------------------

JOURNALED: dict[str, str] = {
    # os
    "os.access": "os.access(A, os.R_OK)",
    "os.getcwd": "os.getcwd()",
    "os.getcwdb": "os.getcwdb()",
    "os.cpu_count": "os.cpu_count()",
    "os.getegid": "os.getegid()",
    "os.geteuid": "os.geteuid()",
    "os.getgid": "os.getgid()",
    "os.getgroups": "os.getgroups()",
    "os.getgrouplist": "os.getgrouplist('root', 0)",
    "os.getlogin": "os.getlogin()",
    "os.getpgid": "os.getpgid(0)",
    "os.getpgrp": "os.getpgrp()",
    "os.getpid": "os.getpid()",
    "os.getppid": "os.getppid()",
    "os.getpriority": "os.getpriority(os.PRIO_PROCESS, 0)",
    "os.getresgid": "os.getresgid()",
    "os.getresuid": "os.getresuid()",
    "os.getsid": "os.getsid(0)",
    "os.getuid": "os.getuid()",
    "os.getloadavg": "os.getloadavg()",
    "os.sched_getaffinity": "sorted(os.sched_getaffinity(0))",
    "os.sched_getscheduler": "os.sched_getscheduler(0)",
    "os.sched_get_priority_max": "os.sched_get_priority_max(os.SCHED_OTHER)",
    "os.sched_get_priority_min": "os.sched_get_priority_min(os.SCHED_OTHER)",
    "os.sched_rr_get_interval": "os.sched_rr_get_interval(0)",
    "os.sched_getparam": "os.sched_getparam(0).sched_priority",
    "os.readlink": "os.readlink(A)",
    "os.listdir": "sorted(os.listdir(DATA))",
    "os.isatty": "os.isatty(0)",
    "os.ttyname": "os.ttyname(0)",
    "os.ctermid": "os.ctermid()",
    "os.confstr": "os.confstr('CS_PATH')",
    "os.sysconf": "os.sysconf('SC_PAGESIZE')",
    "os.pathconf": "os.pathconf(A, 'PC_NAME_MAX')",
    "os.fpathconf": "os.fpathconf(0, 'PC_NAME_MAX')",
    "os.device_encoding": "os.device_encoding(0)",
    "os.getxattr": "os.getxattr(A, 'user.distdev')",
    "os.listxattr": "os.listxattr(A)",
    "os.get_blocking": "os.get_blocking(0)",
    "os.get_inheritable": "os.get_inheritable(0)",
    "os.urandom": "os.urandom(6)",
    "os.getrandom": "os.getrandom(6)",
    "os.stat": "os.stat(A)",
    "os.lstat": "os.lstat(DATA)",
    "os.fstat": "os.fstat(0)",
    "os.statvfs": "os.statvfs(HERE)",
    "os.fstatvfs": "os.fstatvfs(0)",
    "os.uname": "os.uname()",
    "os.times": "os.times()",
    "os.get_terminal_size": "os.get_terminal_size()",
    "os.scandir": "sorted((e.name, e.is_file(), e.is_dir()) for e in os.scandir(DATA))",
    # time
    "time.time": "time.time()",
    "time.time_ns": "time.time_ns()",
    "time.monotonic": "time.monotonic()",
    "time.monotonic_ns": "time.monotonic_ns()",
    "time.perf_counter": "time.perf_counter()",
    "time.perf_counter_ns": "time.perf_counter_ns()",
    "time.process_time": "time.process_time()",
    "time.process_time_ns": "time.process_time_ns()",
    "time.thread_time": "time.thread_time()",
    "time.thread_time_ns": "time.thread_time_ns()",
    "time.clock_gettime": "time.clock_gettime(time.CLOCK_REALTIME)",
    "time.clock_gettime_ns": "time.clock_gettime_ns(time.CLOCK_MONOTONIC)",
    "time.clock_getres": "time.clock_getres(time.CLOCK_MONOTONIC)",
    "time.sleep": "time.sleep(0)",
    "time.mktime": "time.mktime((2021, 3, 4, 5, 6, 7, 0, 0, -1))",
    "time.ctime": "time.ctime()",
    "time.asctime": "time.asctime()",
    "time.strftime": "time.strftime('%Y-%m-%d %H:%M:%S %z')",
    "time.localtime": "time.localtime()",
    "time.gmtime": "time.gmtime()",
    # uuid, secrets
    "uuid.getnode": "uuid.getnode()",
    "uuid.uuid1": "uuid.uuid1()",
    "uuid.uuid4": "uuid.uuid4()",
    "secrets.choice": "secrets.choice('abcdefgh')",
    "secrets.randbelow": "secrets.randbelow(1000)",
    "secrets.randbits": "secrets.randbits(12)",
    "secrets.token_bytes": "secrets.token_bytes(4)",
    "secrets.token_hex": "secrets.token_hex(4)",
    "secrets.token_urlsafe": "secrets.token_urlsafe(4)",
    # socket
    "socket.gethostname": "socket.gethostname()",
    "socket.getfqdn": "socket.getfqdn()",
    "socket.gethostbyname": "socket.gethostbyname('localhost')",
    "socket.gethostbyname_ex": "socket.gethostbyname_ex('localhost')",
    "socket.gethostbyaddr": "socket.gethostbyaddr('127.0.0.1')",
    "socket.getaddrinfo": "socket.getaddrinfo('127.0.0.1', 80, proto=socket.IPPROTO_TCP)",
    "socket.getnameinfo": "socket.getnameinfo(('127.0.0.1', 80), socket.NI_NUMERICHOST)",
    "socket.getprotobyname": "socket.getprotobyname('tcp')",
    "socket.getservbyname": "socket.getservbyname('http')",
    "socket.getservbyport": "socket.getservbyport(80)",
    "socket.if_nameindex": "socket.if_nameindex()",
    "socket.if_indextoname": "socket.if_indextoname(1)",
    "socket.if_nametoindex": "socket.if_nametoindex('lo')",
    # urllib.request: host lookups it caches after a first call
    "urllib.request.localhost": "urllib.request.localhost()",
    "urllib.request.thishost": "urllib.request.thishost()",
    # platform
    "platform.architecture": "platform.architecture()",
    "platform.freedesktop_os_release": "platform.freedesktop_os_release().get('ID')",
    "platform.java_ver": "platform.java_ver()",
    "platform.libc_ver": "platform.libc_ver()",
    "platform.mac_ver": "platform.mac_ver()",
    "platform.machine": "platform.machine()",
    "platform.node": "platform.node()",
    "platform.platform": "platform.platform()",
    "platform.processor": "platform.processor()",
    "platform.release": "platform.release()",
    "platform.system": "platform.system()",
    "platform.version": "platform.version()",
    "platform.win32_edition": "platform.win32_edition()",
    "platform.win32_is_iot": "platform.win32_is_iot()",
    "platform.win32_ver": "platform.win32_ver()",
    "platform.uname": "platform.uname()",
    # the rest of the table
    "shutil.disk_usage": "shutil.disk_usage(HERE)",
    "getpass.getuser": "getpass.getuser()",
    "tempfile.gettempdir": "tempfile.gettempdir()",
    "tempfile.gettempdirb": "tempfile.gettempdirb()",
    "resource.getpagesize": "resource.getpagesize()",
    "resource.getrlimit": "resource.getrlimit(resource.RLIMIT_NOFILE)",
    "resource.getrusage": "resource.getrusage(resource.RUSAGE_SELF)",
    "locale.atof": "locale.atof('1.5')",
    "locale.atoi": "locale.atoi('42')",
    "locale.currency": "locale.currency(1.5)",
    "locale.delocalize": "locale.delocalize('1.5')",
    "locale.format": "locale.format_string('%d', 7)",
    "locale.format_string": "locale.format_string('%.2f', 2.5)",
    "locale.getencoding": "locale.getencoding()",
    "locale.getlocale": "locale.getlocale()",
    "locale.getpreferredencoding": "locale.getpreferredencoding()",
    "locale.localeconv": "locale.localeconv()['decimal_point']",
    "locale.localize": "locale.localize('1.5')",
    "locale.nl_langinfo": "locale.nl_langinfo(locale.CODESET)",
    "locale.str": "locale.str(2.5)",
    "locale.strcoll": "locale.strcoll('a', 'b')",
    "locale.strxfrm": "locale.strxfrm('abc')",
    "locale.dcgettext": "locale.dcgettext(None, 'hello', locale.LC_MESSAGES)",
    "locale.dgettext": "locale.dgettext(None, 'hello')",
    "locale.gettext": "locale.gettext('hello')",
    "sys.getrefcount": "sys.getrefcount(None) > 0",
    "sys.getallocatedblocks": "sys.getallocatedblocks() > 0",
    "timeit.default_timer": "timeit.default_timer()",
    "threading.get_native_id": "threading.get_native_id()",
    "_thread.get_native_id": "_thread.get_native_id()",
}
"""Every journaled kind of the table, as code calls it (``test_generated`` checks that none is
missing); a call that raises on this machine (``os.getlogin`` without a terminal) journals its
exception, which is as good a test."""

SKIPPED: dict[str, str] = {
    "time.pthread_getcpuclockid": "its argument is a thread's ident, which differs per process "
                                  "(corpus: threading.get_ident() as an effect's argument)",
}
"""Journaled kinds left out of the vocabulary, and why."""

SPECIAL: dict[str, str] = {
    "env.get": "os.environ['DD_FUZZ_A']",
    "env.get(default)": "os.environ.get('DD_FUZZ_MISSING', 'default')",
    "os.getenv": "os.getenv('DD_FUZZ_B', 'fallback')",
    "env.contains": "'DD_FUZZ_A' in os.environ",
    "env.keys": "sorted(k for k in os.environ if k.startswith('DD_FUZZ'))",
    "env.copy": "sorted(os.environ.copy())[:3]",
    "env.own write": "os.environ.setdefault('DD_FUZZ_OWN', 'mine') + os.environ['DD_FUZZ_OWN']",
    "random.random": "random.random()",
    "random.randint": "random.randint(0, 10**6)",
    "random.choice": "random.choice(['x', 'y', 'z', 'w'])",
    "random.sample": "random.sample(range(100), 3)",
    "random.shuffle": "(lambda v: (random.shuffle(v), v)[1])(list(range(6)))",
    "random.gauss": "random.gauss(0, 1)",
    "random.getrandbits": "random.getrandbits(20)",
    "random.Random()": "random.Random().random()",
    "random.SystemRandom": "random.SystemRandom().random()",
    "SystemRandom.randbytes": "random.SystemRandom().randbytes(4)",
    "SystemRandom.getrandbits": "random.SystemRandom().getrandbits(16)",
    "datetime.now": "datetime.datetime.now()",
    "datetime.now(utc)": "datetime.datetime.now(datetime.timezone.utc)",
    "datetime.utcnow": "datetime.datetime.utcnow()",
    "datetime.today": "datetime.datetime.today()",
    "date.today": "datetime.date.today()",
    "open(text)": "open(A).read()",
    "open(bytes)": "open(B, 'rb').read()",
    "open(relative)": "open('data/a.txt').read()",
    "open(missing)": "open(os.path.join(DATA, 'missing.txt'))",
    "open(/dev/urandom)": "(lambda f: (f.read(5), f.close())[0])(open('/dev/urandom', 'rb'))",
    "sys.argv": "list(sys.argv)[:1]",
    "sys.flags": "[sys.flags.optimize, sys.flags.dont_write_bytecode]",
    "sqlite3 in memory": "(lambda c: (c.execute('create table t(x)'), c.execute("
                         "'insert into t values (42)'), c.execute('select x from t')"
                         ".fetchall())[-1])(sqlite3.connect(':memory:'))",
    "library: json": "json.load(open(J))",
    "library: configparser": "(lambda p: (p.read(INI), p.get('server', 'port'))[1])("
                             "configparser.ConfigParser())",
    "library: glob": "sorted(os.path.relpath(p, HERE) for p in glob.glob(os.path.join(DATA, "
                     "'*.txt')))",
    "library: glob(recursive)": "sorted(glob.glob('**/*.txt', root_dir=HERE, recursive=True))",
    "library: pathlib.read_text": "pathlib.Path(HERE, 'data', 'b.txt').read_text()",
    "library: pathlib.iterdir": "sorted(p.name for p in pathlib.Path(DATA).iterdir())",
    "library: pathlib.glob": "sorted(p.name for p in pathlib.Path(DATA).rglob('*.txt'))",
    "library: pathlib.exists": "[pathlib.Path(A).exists(), pathlib.Path(DATA, 'nope').exists()]",
    "library: os.walk": "sorted((os.path.relpath(d, HERE), sorted(f)) for d, _, f in "
                        "os.walk(DATA))",
    "library: os.path": "[os.path.exists(A), os.path.getsize(B), os.path.isdir(DATA)]",
    "user @effect": "fetch(len(out))",
    "user @effect raising .status": "fail_with_status(503)",
}
"""What the table covers by mechanisms of their own, and library IO on the app's files."""

REFUSED: dict[str, str] = {
    "thread": "threading.Thread(target=print).start()",
    "write": "open(os.path.join(HERE, 'written.txt'), 'w')",
    "remove": "os.remove(A)",
    "socket": "socket.socket()",
    "subprocess": "subprocess.run(['true'])",
}
"""Refused actions, each caught by the code that tried it."""

KNOWN_HOLES: dict[str, str] = {
    "membrane message": "a refused argument's message names it by parameter live and by "
                        "position at replay (corpus: a refused argument the caller catches)",
    "time.perf_counter": "journaled as time.perf_counter where timeit was imported before "
                         "distdev (this test process, once any test imported it), as "
                         "timeit.default_timer where not (the replaying process) (corpus: "
                         "time.perf_counter, timeit imported before distdev)",
    "timeit.default_timer": "the same function as time.perf_counter",
}
"""Vocabulary that fails today, left out unless DISTDEV_FUZZ_HOLES=1 (a corpus case lists each)."""

WITH_HOLES = os.environ.get("DISTDEV_FUZZ_HOLES") == "1"

FILES = {
    "data/a.txt": "alpha\n",
    "data/b.txt": "beta beta\n",
    "data/sub/c.txt": "gamma\n",
    "data/settings.json": '{"name": "fuzz", "sizes": [1, 2, 3]}\n',
    "data/settings.ini": "[server]\nport = 8125\n",
}

ENV = {"DD_FUZZ_A": "alpha-env", "DD_FUZZ_B": "beta-env"}
"""Set while recording; a replay sees other values."""

PRELUDE = '''
import _thread, configparser, dataclasses, datetime, getpass, glob, json, locale, os
import pathlib, platform, random, resource, secrets, shutil, socket, sqlite3, subprocess, sys
import tempfile, threading, time, timeit, urllib.request, uuid
import distdev
from distdev import ServiceProxy, effect

HERE = os.path.dirname(__file__)
DATA = os.path.join(HERE, "data")
A = os.path.join(DATA, "a.txt")
B = os.path.join(DATA, "b.txt")
J = os.path.join(DATA, "settings.json")
INI = os.path.join(DATA, "settings.ini")

peers = {}
out = []
calls = []
d = {}
l = []
s = set()


@dataclasses.dataclass
class Box:
    n: int = 0
    tags: list = dataclasses.field(default_factory=list)


box = Box()


class Oops(Exception):
    def __init__(self, status):
        super().__init__(f"oops {status}")
        self.status = status


def _s(v):
    """A value as state keeps it (deterministic in the value alone)."""
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, (bytes, bytearray)):
        return v.hex()
    if isinstance(v, dict):
        return {str(k): _s(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, set, frozenset)):
        return [_s(x) for x in v]
    if isinstance(v, (datetime.date, datetime.time, uuid.UUID)):
        return [type(v).__name__, str(v)]
    try:
        return [type(v).__name__, [_s(x) for x in v]]
    except TypeError:
        return type(v).__name__


def _e(kind, f):
    try:
        v = _s(f())
    except distdev.ReplayDivergenceError:
        raise  # reported as it is, not as the state it leaves
    except OSError as exc:
        v = ["raised", type(exc).__name__, exc.errno, exc.filename]
    except Exception as exc:
        v = ["raised", type(exc).__name__, getattr(exc, "status", None)]
    out.append([kind, v])
    return v


def _c(label, f):
    try:
        v = f()
        calls.append([label, _s(v)])
    except distdev.ReplayDivergenceError:
        raise
    except Exception as exc:
        calls.append([label, type(exc).__name__, _msg(exc), getattr(exc, "status", None)])


def _msg(exc):
    if isinstance(exc, distdev.MembraneError) and "argument" in str(exc) and not WITH_HOLES:
        return "membrane: an argument"
    return str(exc)


def _refused(label, f):
    try:
        f()
        calls.append([label, "not refused"])
    except distdev.DeterminismError as exc:
        calls.append([label, "refused", str(exc)])


@effect
def fetch(n):
    return [n, time.time(), random.random()]


@effect
def fail_with_status(status):
    raise Oops(status)


def connect(name: str, proxy: ServiceProxy) -> None:
    peers[name] = proxy
'''


# -- programs ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Stmt:
    """One line of service code."""

    code: str


@dataclasses.dataclass(frozen=True)
class Export:
    number: int
    """Global: export k may call exports numbered above k."""
    service: str
    body: tuple[Stmt, ...]
    result: str
    raises: int | None
    """Raise Oops when the argument is this modulo 3."""

    @property
    def name(self) -> str:
        return f"f{self.number}"


@dataclasses.dataclass(frozen=True)
class Program:
    services: tuple[str, ...]
    top: dict[str, tuple[Stmt, ...]]
    exports: tuple[Export, ...]
    root_calls: tuple[tuple[str, str, Any], ...]
    """Calls the root's top level makes at build time: (service, export, argument)."""
    calls: tuple[tuple[str, str, Any], ...]
    """Calls from outside after the build: (service id, export, argument)."""

    def files(self) -> dict[str, str]:
        files = dict(FILES)
        root = ["from distdev import import_service"]
        root += [f"{name} = import_service('./{name}.py')" for name in self.services]
        for name in self.services:
            for other in self.services:
                if other != name:
                    root.append(f"{name}.connect({other!r}, {other})")
        root.append("seen = []")
        for service, export, arg in self.root_calls:
            root += ["try:", f"    seen.append({service}.{export}({arg!r}))",
                     "except Exception as exc:", "    seen.append(type(exc).__name__)"]
        files["app.py"] = "\n".join(root) + "\n"
        for name in self.services:
            lines = [PRELUDE.replace("WITH_HOLES", repr(WITH_HOLES))]
            lines += [stmt.code for stmt in self.top.get(name, ())]
            for export in self.exports:
                if export.service != name:
                    continue
                lines.append(f"\n\ndef {export.name}(x):")
                lines += [textwrap.indent(stmt.code, "    ") for stmt in export.body]
                if export.raises is not None:
                    lines.append(f"    if isinstance(x, int) and x % 3 == {export.raises}:")
                    lines.append("        raise Oops(x)")
                lines.append(f"    return {export.result}")
            files[f"{name}.py"] = "\n".join(lines) + "\n"
        return files

    def __repr__(self) -> str:
        """The program as a corpus case."""
        shown = {k: v for k, v in self.files().items() if k not in FILES}
        files = ",\n".join(f"    {k!r}: '''\n{textwrap.indent(v, '        ')}'''"
                           for k, v in shown.items())
        calls = ", ".join(f"call({f'app/{s}'!r}, {e!r}, {a!r}, raises='any')"
                          for s, e, a in self.calls)
        return (f"\ncase('generated', {{\n{files},\n    **GENERATED_FILES,\n}}, 'exact', {calls},"
                f"\n     env={ENV!r}, in_app_folder=True)\n")


NAMES = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa"]


@st.composite
def programs(draw: st.DrawFn) -> Program:
    services = tuple(f"s{i}" for i in range(draw(st.sampled_from([2, 3, 1]))))
    count = draw(st.integers(1, 7))
    # Mostly alternating owners, so that calls to higher-numbered exports cross membranes and
    # chains come back (s0.f0 -> s1.f1 -> s0.f2).
    owners = [services[(k + draw(st.integers(0, len(services) - 1))) % len(services)]
              for k in range(count)]
    effects = vocabulary()

    def value_of(in_export: bool) -> str:
        return draw(st.sampled_from(["len(out)", "out[-1][1] if out else None",
                                     repr(draw(st.sampled_from(NAMES))),
                                     repr(draw(st.integers(-5, 99)))]
                                    + (["x"] if in_export else [])))

    def statement(number: int | None, service: str) -> Stmt:
        kind = draw(st.sampled_from(["effect"] * 6 + ["mutate"] * 3 + ["call"] * 5
                                    + ["refused arg", "refused action"]))
        callees = [e for e in range(count) if number is not None and e > number]
        if kind == "effect":
            name = draw(st.sampled_from(effects))
            expr = JOURNALED.get(name) or SPECIAL[name]
            return Stmt(f"_e({name!r}, lambda: {expr})")
        if kind == "mutate":
            word = repr(draw(st.sampled_from(NAMES)))
            inside = number is not None

            def value() -> str:
                return value_of(inside)

            return Stmt(draw(st.sampled_from([
                f"d[{word}] = {value()}",
                f"d.setdefault('nest', {{}}).setdefault({word}, []).append({value()})",
                f"d.pop({word}, None)",
                f"l.append({value()})",
                "l.pop() if l else None",
                f"l.extend([{value()}, {value()}])",
                f"s.add({word})",
                f"s.discard({word})",
                f"s.update({{{word}, {repr(draw(st.sampled_from(NAMES)))}}})",
                "box.n += 1",
                f"box.tags.append({word})",
                "d['order'] = list(s)",
            ])))
        if kind == "call" and callees:
            target = draw(st.sampled_from(callees))
            arg = draw(st.one_of(st.integers(0, 20), st.sampled_from(NAMES),
                                 st.lists(st.integers(0, 9), max_size=3)))
            holder = owners[target]
            if holder == service:
                return Stmt(f"_c('f{target}', lambda: f{target}({arg!r}))")
            return Stmt(f"_c('{holder}.f{target}', lambda: peers[{holder!r}].f{target}({arg!r}))")
        if kind == "refused arg" and callees:
            target = draw(st.sampled_from(callees))
            holder = owners[target]
            if holder != service:
                bad = draw(st.sampled_from(["object()", "lambda: 1", "open(A)", "Oops(1)",
                                            "{1: object()}"]))
                return Stmt(f"_c('refused arg', lambda: peers[{holder!r}].f{target}({bad}))")
        if kind == "refused action":
            name = draw(st.sampled_from(sorted(REFUSED)))
            return Stmt(f"_refused({name!r}, lambda: {REFUSED[name]})")
        name = draw(st.sampled_from(effects))
        return Stmt(f"_e({name!r}, lambda: {JOURNALED.get(name) or SPECIAL[name]})")

    exports = []
    for number in range(count):
        service = owners[number]
        body = tuple(statement(number, service) for _ in range(draw(st.integers(0, 5))))
        if number + 1 < count and draw(st.booleans()):  # a spine: f0 -> f1 -> f2 ...
            holder = owners[number + 1]
            proxy = "" if holder == service else f"peers[{holder!r}]."
            label = f"f{number + 1}" if holder == service else f"{holder}.f{number + 1}"
            body = (Stmt(f"_c({label!r}, lambda: {proxy}f{number + 1}(x))"), *body)
        refuse_result = draw(st.integers(0, 9)) == 0
        result = "object()" if refuse_result else draw(st.sampled_from(
            ["[len(out), x]", "x", "len(calls)", "d.get('order')", "box.n", "sorted(s)",
             "out[-1] if out else None"]))
        raises = draw(st.one_of(st.none(), st.integers(0, 2)))
        exports.append(Export(number, service, body, result, raises))
    top = {name: tuple(statement(None, name) for _ in range(draw(st.integers(0, 3))))
           for name in services}

    def a_call() -> tuple[str, str, Any]:
        export = draw(st.sampled_from(exports))
        return export.service, export.name, draw(st.integers(0, 20))

    root_calls = tuple(a_call() for _ in range(draw(st.integers(0, 2))))
    calls = tuple(a_call() for _ in range(draw(st.integers(1, 4))))
    return Program(services, top, tuple(exports), root_calls, calls)


def vocabulary() -> list[str]:
    """The effect kinds programs draw from (the known holes left out unless asked for)."""
    return [k for k in sorted(JOURNALED) + sorted(SPECIAL) if WITH_HOLES or k not in KNOWN_HOLES]


def _effect(kind: str) -> Stmt:
    return Stmt(f"_e({kind!r}, lambda: {JOURNALED.get(kind) or SPECIAL[kind]})")


def coverage_programs(per_program: int = 12) -> list[Program]:
    """Programs that together use every kind of the vocabulary, run before the random ones
    (hypothesis draws some kinds rarely): in each, s0's top level and three exports split a
    share of the kinds, and s0.f0 -> s1.f1 -> s0.f2 re-enters s0, whose f2 raises on odd
    arguments into s1, which catches."""
    kinds = vocabulary()
    found = []
    for start in range(0, len(kinds), per_program):
        share = [_effect(k) for k in kinds[start:start + per_program]]
        quarter = max(1, len(share) // 4)
        exports = (
            Export(0, "s0", (*share[quarter:2 * quarter], Stmt("_c('s1.f1', lambda: "
                   "peers['s1'].f1(x))"), Stmt("s.add('alpha')")), "[len(out), x]", None),
            Export(1, "s1", (*share[2 * quarter:3 * quarter], Stmt("_c('s0.f2', lambda: "
                   "peers['s0'].f2(x))"), Stmt("box.n += 1")), "box.n", None),
            Export(2, "s0", (*share[3 * quarter:], Stmt("l.append(len(out))")), "len(l)", 1),
        )
        found.append(Program(("s0", "s1"), {"s0": tuple(share[:quarter]), "s1": ()}, exports,
                             (("s0", "f0", 2),), (("s0", "f0", 4), ("s0", "f0", 7))))
    return found
