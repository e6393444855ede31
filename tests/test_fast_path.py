"""The in-process fast path and the lock-free journal writer.

The fast path (``distdev.service._fast``) writes a common service-to-service call's four records
from bytes encoded once; the general path builds and encodes each record on its own. They must
write the same journals byte for byte: a randomized workload runs once with the fast path and
once without it (its internal switch), and the two runs' journals are compared, then replayed.

The writer's buffer is appended to without a lock while a group commit flushes it from another
thread: a stress test writes from one thread and flushes from another, and checks that every
record reached the file, whole and in order.
"""

from __future__ import annotations

import random
import sys
import threading
from pathlib import Path
from typing import Any

import cbor2
import pytest
from cbor2 import CBORTag, frozendict
from hypothesis import given, settings
from hypothesis import strategies as st
from support import write_files

import distdev
from distdev.compartment import next_callout_id
from distdev.journal import FORMAT_NAME, FORMAT_VERSION, Header, JournalWriter, read_journal
from distdev.membrane import (
    NotPlain,
    args_to_wire,
    dumps,
    from_wire,
    plain_call_copy,
    plain_copy,
    to_wire,
)
from distdev.membrane._values import _escape_strings
from distdev.service import Recorder, _fast, _tape
from distdev.service._service import _DigestSchedule

# -- the writer ---------------------------------------------------------------------------------


def _header() -> Header:
    return Header(0, FORMAT_NAME, FORMAT_VERSION, "stress", "0.1.0", "3.11", "0", "/app",
                  "stress.py", [])


def test_writer_flush_from_another_thread_loses_nothing(tmp_path: Path) -> None:
    """One thread appends records of varied sizes while another flushes as fast as it can (a
    group commit's leader): the file holds every record, whole and in order."""
    path = tmp_path / "journal.cbor"
    writer = JournalWriter.create(path, _header())
    count = 20_000
    sizes = random.Random(18).choices([0, 5, 30, 300, 70_000], weights=[5, 5, 5, 3, 1], k=count)
    done = threading.Event()
    flushes = 0

    def flush_until_done() -> None:
        nonlocal flushes
        while not done.is_set():
            writer.flush()
            flushes += 1

    flusher = threading.Thread(target=flush_until_done)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as the interpreter can
    flusher.start()
    try:
        for i, size in enumerate(sizes):
            writer.write_fields(["output", 0, "stdout", f"{i}:" + "x" * size])
    finally:
        done.set()
        flusher.join()
        sys.setswitchinterval(interval)
    writer.close()
    events = read_journal(path).events
    texts = [e.text for e in events[1:]]  # type: ignore[attr-defined]
    assert texts == [f"{i}:" + "x" * size for i, size in enumerate(sizes)]
    assert [e.seq for e in events] == list(range(count + 1))
    assert flushes > 1  # the flusher did run while records were written


def test_writer_encoded_record_matches_fields(tmp_path: Path) -> None:
    """A record written from pre-encoded parts is the record ``write_fields`` writes."""
    shapes: list[list[Any]] = [
        ["app/worker", "add", [1, -0.0, 2**70, "s"], {"k": None}],
        [1],  # a payload under 24 bytes: its length is in the head's marker
        ["x" * 300, b"y" * 70_000],  # payloads of 2- and 4-byte lengths
    ]
    for seq in (1, 23, 24, 255, 256, 65_535, 65_536, 2**32 - 1, 2**32, 2**32 + 5):
        for fields in shapes:
            a = JournalWriter(tmp_path / "a", _Sink(), seq)
            b = JournalWriter(tmp_path / "b", _Sink(), seq)
            a.write_fields(["call-out", 0, *fields])
            b.write_encoded(bytes((0x82 + len(fields),)) + cbor2.dumps("call-out"),
                            b"".join(dumps(f) for f in fields))
            assert a.next_seq == b.next_seq == seq + 1
            a.flush()
            b.flush()
            assert a._file.data == b._file.data  # type: ignore[attr-defined]


class _Sink:
    """A file that keeps what it is given (the writer's whole interface to its file)."""

    def __init__(self) -> None:
        self.data = b""

    def write(self, data: bytes) -> int:
        self.data += data
        return len(data)

    def flush(self) -> None:
        pass

    def fileno(self) -> int:
        raise OSError("no file")

    def close(self) -> None:
        pass


# -- fast and general paths write the same journals ---------------------------------------------

WORKLOAD = {
    "app.py": """
        from distdev import effect, import_service
        from models import Item, Point

        a = import_service("./a.py")
        b = import_service("./b.py")
        ledger = import_service("./ledger.py")
        a.connect(b)
        b.connect(a)
        ledger.connect(a)
        log = []


        @effect
        def mark(n):
            return -n


        def run(ops: list) -> int:
            for op in ops:
                name, params = op[0], op[1:]
                try:
                    if name == "echo":
                        got = a.echo(params[0])
                    elif name == "add":
                        got = a.add(params[0], params[1])
                    elif name == "kw":
                        got = a.kw(params[0], scale=params[1], tag=params[2])
                    elif name == "fail":
                        got = a.fail(params[0], "it failed")
                    elif name == "deep_fail":
                        got = b.fail_through(params[0])
                    elif name == "mutate":
                        items, table = params[0], params[1]
                        got = a.mutate(items, table)
                        got = [got, items, table]  # the caller's copies are its own
                    elif name == "reenter":
                        got = a.ping_b(params[0])
                    elif name == "point":
                        got = a.move(Point(params[0], params[1]))
                        got = [got.x, got.y]
                    elif name == "item":
                        got = a.restock(Item(params[0], params[1]))
                        got = [got.name, got.qty]
                    elif name == "ledger":
                        got = ledger.relay(params[0])
                    elif name == "tick":
                        got = [a.tick(params[0]), mark(params[0])]  # then the root's own
                    else:
                        got = a.nothing()
                    log.append([name, got])
                except Exception as exc:
                    log.append([name, type(exc).__name__, str(exc)])
            return len(log)
    """,
    "models.py": """
        import dataclasses

        import msgspec


        @dataclasses.dataclass
        class Point:
            x: float
            y: float


        class Item(msgspec.Struct):
            name: str
            qty: int
    """,
    "a.py": """
        from distdev import effect
        from models import Item, Point

        _b = None
        seen = []


        @effect
        def reading(n):
            return n * 7


        def tick(n):
            return reading(n) + 1  # an effect in the callee: the caller's depth is its own


        class Refused(Exception):
            def __init__(self, message, code):
                super().__init__(message)
                self.code = code


        def connect(b) -> None:
            global _b
            _b = b


        def echo(x):
            seen.append(type(x).__name__)
            return x


        def add(x, y):
            return x + y


        def kw(x, *, scale=1, tag=""):
            return [x * scale, tag]


        def fail(kind, message):
            if kind == "value":
                raise ValueError(message)
            if kind == "key":
                raise KeyError(message)
            if kind == "custom":
                raise Refused(message, 42)
            return {"unexpected": object()}  # cannot cross: a membrane error at the callee


        def mutate(items, table):
            items.append("callee's")
            table["callee"] = len(items)
            return len(items)


        def ping_b(n):
            seen.append(n)
            return _b.bounce(n)


        def back(n):
            return n * 10


        def move(p: Point) -> Point:
            return Point(p.x + 1, p.y * 2)


        def restock(item: Item) -> Item:
            return Item(item.name.upper(), item.qty + 1)


        def nothing() -> None:
            return None
    """,
    "b.py": """
        _a = None


        def connect(a) -> None:
            global _a
            _a = a


        def bounce(n):
            return _a.back(n) + 1  # A -> B -> A: back into A on the same chain


        def fail_through(kind):
            return _a.fail(kind, "from b")
    """,
    "ledger.py": """
        from distdev import host

        host.process(interleave=True)
        _a = None
        entries = []


        def connect(a) -> None:
            global _a
            _a = a


        def relay(n):
            entries.append(n)
            return _a.add(n, 1)
    """,
}

_SCALARS: list[Any] = [0, 1, -1, 23, 24, 255, 256, 2**31, 2**63, 2**64, 2**70, -(2**64) - 1,
                       0.0, -0.0, 1.5, float("nan"), float("inf"), float("-inf"), 1e308, 5e-324,
                       "", "s", "é" * 30, "x" * 300, "\udcff lone", b"", b"\x00\xff", True,
                       False, None]


def _value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(6 if depth < 2 else 1)
    if kind == 0:
        return rng.choice(_SCALARS)
    if kind == 1:
        return [_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    if kind == 2:
        return {f"k{i}": _value(rng, depth + 1) for i in range(rng.randrange(4))}
    if kind == 3:
        return tuple(_value(rng, depth + 1) for _ in range(rng.randrange(3)))
    if kind == 4:
        return {rng.choice([1, 2, "a"]), rng.choice([None, 3.5])}
    return rng.choice(_SCALARS)


def _op(rng: random.Random) -> list[Any]:
    name = rng.choice(["echo", "echo", "add", "add", "kw", "fail", "deep_fail", "mutate",
                       "reenter", "point", "item", "ledger", "tick", "nothing"])
    if name == "echo":
        return [name, _value(rng)]
    if name == "add":
        return [name, rng.choice(_SCALARS[:12] + [2.5]), rng.choice(_SCALARS[:12])]
    if name == "kw":
        return [name, rng.choice([2, "ab", [1]]), rng.randrange(3), rng.choice(["", "t"])]
    if name in ("fail", "deep_fail"):
        return [name, rng.choice(["value", "key", "custom", "refused"])]
    if name == "mutate":
        return [name, [_value(rng) for _ in range(rng.randrange(3))], {"a": _value(rng)}]
    if name == "point":
        return [name, rng.choice([0.5, -0.0, 1e300]), rng.choice([2.0, float("inf")])]
    if name == "item":
        return [name, rng.choice(["bolt", "é"]), rng.randrange(2**40)]
    return [name, rng.randrange(1000)]


def _record(folder: Path, run: Path, batches: list[list[list[Any]]], *, fast: bool,
            monkeypatch: pytest.MonkeyPatch
            ) -> tuple[dict[str, tuple[Path, Path, dict[str, Any]]], list[Any]]:
    """Build and run the workload with the fast path on, or with the general path as it
    always was: by service, its build journal, its live journal and its state at the end;
    and the ids of the calls out that asked for one (``next_callout_id``)."""
    monkeypatch.setattr(_fast, "ENABLED", fast)
    ids: list[Any] = []
    monkeypatch.setattr(_tape, "next_callout_id",
                        lambda seq: ids.append(next_callout_id(seq)) or ids[-1])
    if not fast:  # the general path as it was: every recorder follows the schedule
        monkeypatch.setattr(Recorder, "interleaving", property(lambda self: True,
                                                               lambda self, value: None))
    app = distdev.App(folder / "app.py", out=run / "out", state=run / "state")
    app._chain_prefix = "chain"  # chains are random per App: the same in both runs
    app.build()
    builds = {sid: app.journal(sid) for sid in app.services}
    app.go_live()
    try:
        root = app.service("app")
        for ops in batches:
            root.run(ops)
        app.service("app/a").echo([1, {"outside": 2.5}])  # outside -> service, both paths
        # A call that carries an id (as one over the network does): the root's calls out
        # are numbered under it, and a call on the general path after fast ones must get
        # the id it gets when every call takes the general path.
        args, kwargs = args_to_wire([batches[0] + [["ledger", 5]]], {}, "app", "run")
        app.services["app"].handle_call("app/peer", "chain-keyed", "run", args, kwargs, 7)
        states = {sid: app.state(sid) for sid in app.services}
    finally:
        app.close()
    return {sid: (builds[sid], app.journal(sid), states[sid]) for sid in app.services}, ids


@pytest.mark.parametrize("seed", [1813, 7, 2026])
def test_fast_and_general_paths_write_byte_identical_journals(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    # A digest after every call: its spacing follows measured time otherwise.
    monkeypatch.setattr(_DigestSchedule, "SHARE", float("inf"))
    folder = write_files(tmp_path / "app", WORKLOAD)
    rng = random.Random(seed)
    batches = [[_op(rng) for _ in range(rng.randrange(1, 30))] for _ in range(12)]
    fast, fast_ids = _record(folder, tmp_path / "fast", batches, fast=True,
                             monkeypatch=monkeypatch)
    general, general_ids = _record(folder, tmp_path / "general", batches, fast=False,
                                   monkeypatch=monkeypatch)
    keyed = [[i for i in ids if str(i).startswith("app/peer:7/")] for ids in (fast_ids,
                                                                               general_ids)]
    assert keyed[0] and keyed[0][-1] == keyed[1][-1], keyed
    assert fast.keys() == general.keys() == {"app", "app/a", "app/b", "app/ledger"}
    for sid, (build, live, state) in fast.items():
        general_build, general_live, general_state = general[sid]
        assert build.read_bytes() == general_build.read_bytes(), f"{sid}'s build journals differ"
        assert live.read_bytes() == general_live.read_bytes(), f"{sid}'s journals differ"
        assert repr(state) == repr(general_state)
        for journal in (live, general_live):
            assert repr(distdev.replay(journal).state()) == repr(state)
    kinds = {type(e).__name__ for e in read_journal(fast["app/a"][1]).events}
    assert {"CallIn", "Return", "Raise", "StateDigest"} <= kinds, kinds
    for sid in ("app", "app/a"):  # effects journaled on both sides of a fast call
        assert any(type(e).__name__ == "Effect" for e in read_journal(fast[sid][1]).events), sid
    kinds = {type(e).__name__ for e in read_journal(fast["app/b"][1]).events}
    assert {"CallIn", "CallOut", "ResultIn", "ErrorIn"} <= kinds, kinds


def test_the_fast_path_takes_the_common_call(tmp_path: Path) -> None:
    """The common call goes the fast way (else the byte-identical test compares the general
    path with itself)."""
    folder = write_files(tmp_path / "app", WORKLOAD)
    app = distdev.App(folder / "app.py", out=tmp_path / "out", state=tmp_path / "state")
    app.build()
    app.go_live()
    taken = []
    original = _fast.call

    def counting(*args: Any) -> Any:
        taken.append(args[2])
        return original(*args)

    try:
        _fast.call = counting  # type: ignore[assignment]
        app.service("app").run([["add", 1, 2], ["reenter", 3], ["ledger", 4]])
    finally:
        _fast.call = original  # type: ignore[assignment]
        app.close()
    # root -> a.add, root -> a.ping_b -> b.bounce -> a.back; not the interleaving ledger's
    assert taken == ["add", "ping_b", "bounce", "back"]


# -- a plain copy is what crossing by the wire makes -------------------------------------------

_python_values = st.recursive(
    st.integers() | st.floats() | st.text() | st.binary() | st.booleans() | st.none()
    | st.sampled_from(["\udcff lone", 2**64, 2**70, -(2**64) - 1]),  # cbor2's to encode
    lambda inner: (st.lists(inner, max_size=8) | st.tuples(inner)
                   | st.dictionaries(st.text() | st.integers() | st.booleans(), inner, max_size=6)
                   | st.frozensets(st.integers(), max_size=3)),
    max_leaves=30)


@settings(max_examples=300, deadline=None)
@given(_python_values)
def test_a_plain_copy_is_the_wire_form_and_what_the_receiver_rebuilds(value: Any) -> None:
    """The fast path hands a plain copy to the journal and to the callee alike: it must be the
    wire form ``to_wire`` makes, and what ``from_wire`` rebuilds from it, type for type; and
    anything else (a tuple, a set: their wire forms are tags) is refused, never copied."""
    try:
        copy = plain_copy(value)
    except NotPlain:
        assert _holds_other_than_plain(value)
        with pytest.raises(NotPlain):
            plain_call_copy((1, value), {})
        return
    wire = to_wire(value, "a test value")
    assert dumps(copy) == dumps(wire)
    args, kwargs, encoded = plain_call_copy((value, 1), {"k": value})
    assert encoded == dumps([wire, 1]) + dumps({"k": wire})
    assert _typed(args) == _typed([value, 1]) and _typed(kwargs) == _typed({"k": value})
    rebuilt = from_wire(wire, _NoReceiver())
    assert _typed(copy) == _typed(rebuilt) == _typed(value)
    assert _no_shared_containers(copy, value)


def _holds_other_than_plain(value: Any) -> bool:
    if type(value) is list:
        return any(_holds_other_than_plain(v) for v in value)
    if type(value) is dict:
        return any(type(k) not in (int, str, bool) or _holds_other_than_plain(v)
                   for k, v in value.items())
    return type(value) not in (int, float, str, bytes, bool, type(None))


def _typed(value: Any) -> Any:
    """A value with every part's type beside it (``1 == True`` and ``nan != nan`` aside)."""
    if type(value) is list:
        return ("list", [_typed(v) for v in value])
    if type(value) is dict:
        return ("dict", [(_typed(k), _typed(v)) for k, v in value.items()])
    return (type(value).__name__, repr(value))


def _no_shared_containers(copy: Any, value: Any) -> bool:
    if type(value) is list:
        return copy is not value and all(map(_no_shared_containers, copy, value))
    if type(value) is dict:
        return copy is not value and all(
            _no_shared_containers(copy[k], v) for k, v in value.items())
    return True


class _NoReceiver:
    """A receiver for values that hold no proxy and no class of a service."""

    def make_proxy(self, service_id: str) -> Any:
        raise AssertionError(service_id)

    def resolve_class(self, module: str, qualname: str) -> type:
        raise AssertionError(qualname)


# -- the membrane's encoder is cbor2's, byte for byte --------------------------------------------

_wire_scalars = (st.integers() | st.floats() | st.text(st.characters(codec=None)) | st.binary()
                 | st.booleans() | st.none()
                 | st.sampled_from([2**64 - 1, 2**64, -(2**64), -(2**64) - 1, -0.0, 5e-324]))


def _tagged(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.builds(CBORTag, st.sampled_from([55800, 55807, 55813, 2**16, 2**32 + 1]), inner)


_wire_values = st.recursive(
    _wire_scalars,
    lambda inner: (st.lists(inner, max_size=30) | st.tuples(inner, inner)
                   | st.dictionaries(st.text() | st.integers() | st.tuples(st.integers()), inner)
                   | _tagged(inner)),
    max_leaves=60)


@settings(max_examples=300, deadline=None)
@given(_wire_values)
def test_membrane_dumps_matches_cbor2(value: Any) -> None:
    try:
        try:
            expected = cbor2.dumps(value)
        except UnicodeEncodeError:  # lone surrogates: both escape them the same way
            expected = cbor2.dumps(_escape_strings(value))
    except UnicodeEncodeError:  # a surrogate no escape holds: refused alike
        with pytest.raises(UnicodeEncodeError):
            dumps(value)
        return
    assert dumps(value) == expected


def test_membrane_dumps_leaves_what_it_does_not_encode_to_cbor2() -> None:
    """Other tags (cbor2 gives some a meaning of its own), bignums and nesting deeper than the
    interpreter's stack are cbor2's to encode."""
    deep: Any = []
    for _ in range(5000):
        deep = [deep]
    for value in (CBORTag(256, "x"), CBORTag(28, [1]), 2**200, -(2**200), deep, frozendict({1: 2})):
        assert dumps(value) == cbor2.dumps(value)


# -- without the C modules ------------------------------------------------------------------------

_WITHOUT_C = """
import sys
for name in ("distdev.journal._framing", "distdev.membrane._cbor", "distdev.membrane._calls",
             "distdev.service._callgate"):
    sys.modules[name] = None  # as a build without a compiler has it: the import fails
sys.path.insert(0, sys.argv[1])
from pathlib import Path
import pytest
import random
import test_fast_path as t
from distdev.journal import _codec
from distdev.membrane import _proxy, _values
from distdev.service import _gate
from distdev.service._service import _DigestSchedule
assert not _codec.NATIVE_FRAMING and _values.NATIVE_ENCODER is None and not _gate.NATIVE_GATE
assert _proxy._ExportCall.__mro__[1] is _proxy.ExportCallBase
_DigestSchedule.SHARE = float("inf")
rng = random.Random(int(sys.argv[4]))
batches = [[t._op(rng) for _ in range(rng.randrange(1, 30))] for _ in range(12)]
with pytest.MonkeyPatch.context() as monkeypatch:
    t._record(Path(sys.argv[2]), Path(sys.argv[3]), batches, fast=True, monkeypatch=monkeypatch)
"""


def test_without_the_c_modules_the_journals_are_the_same_bytes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A build without a compiler runs the Python references of the record buffer, the
    encoder, the export call and the gate: the same workload writes the same journals, byte
    for byte."""
    import subprocess

    seed = 1813
    monkeypatch.setattr(_DigestSchedule, "SHARE", float("inf"))
    folder = write_files(tmp_path / "app", WORKLOAD)
    rng = random.Random(seed)
    batches = [[_op(rng) for _ in range(rng.randrange(1, 30))] for _ in range(12)]
    with_c, _ = _record(folder, tmp_path / "c", batches, fast=True, monkeypatch=monkeypatch)
    ran = subprocess.run(
        [sys.executable, "-c", _WITHOUT_C, str(Path(__file__).parent), str(folder),
         str(tmp_path / "python"), str(seed)], capture_output=True, text=True, timeout=600)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    for sid, (build, live, _) in with_c.items():
        for journal in (build, live):
            twin = tmp_path / "python" / journal.relative_to(tmp_path / "c")
            assert journal.read_bytes() == twin.read_bytes(), f"{sid}: {journal.name} differs"
