"""Journal files: round trip, torn tails, corruption, foreign files, repair and the CLI.

Every journal here is recorded by a real two-service application (``app`` calls ``app/child``),
then damaged byte by byte. The framing is checked against an independent reading: a plain CBOR
decoder and a record encoder written here, not the runtime's.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cbor2
import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support import run_distdev, write_files

import distdev
from distdev._version import recorded_hash_seed
from distdev.cli import run as run_cli
from distdev.errors import JournalCorruptError, JournalError, JournalFormatError
from distdev.journal import EVENT_TYPES, FORMAT_NAME, FORMAT_VERSION, CallIn, Header, Return, parse_journal
from distdev.testing import load_app

APP_FILES = {
    "app.py": """
        from distdev import import_service
        import time

        child = import_service("./child.py")
        started = time.time()


        def ping(n: int) -> int:
            return child.double(n)
    """,
    "child.py": """
        calls = []


        def double(n: int) -> int:
            calls.append(n)
            return 2 * n
    """,
}
PINGS = 4
SERVICES = ("app/child", "app")


@dataclasses.dataclass(frozen=True)
class Recorded:
    """The journals of one recorded run, as bytes, and the child's source."""

    journals: dict[str, bytes]
    child_source: bytes

    def write(self, folder: Path, service: str = "app/child", data: bytes | None = None) -> Path:
        """A copy of ``service``'s journal (or ``data``) at ``folder/journal.cbor``."""
        path = folder / "journal.cbor"
        path.write_bytes(self.journals[service] if data is None else data)
        return path


@pytest.fixture(scope="module", autouse=True)
def bundle_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Replays materialize bundles under XDG_CACHE_HOME: keep them out of the user's home."""
    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(cache))
        yield cache


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    """Record a real run once per module; tests damage copies of its journals."""
    root = write_files(tmp_path_factory.mktemp("app"), APP_FILES)
    app = load_app(root / "app.py", out=root / "out", state=root / "state")
    try:
        for i in range(PINGS):
            assert app.service("app").ping(i) == 2 * i
        paths = {service: app.journal(service) for service in SERVICES}
    finally:
        app.close()
    return Recorded(
        journals={service: path.read_bytes() for service, path in paths.items()},
        child_source=(root / "child.py").read_bytes(),
    )


def frame(payload: bytes) -> bytes:
    """A record framed independently of the runtime: ``[crc32 as uint32, 24(payload)]``."""
    return b"\x82\x1a" + zlib.crc32(payload).to_bytes(4, "big") + b"\xd8\x18" + cbor2.dumps(payload)


def flipped(data: bytes, offset: int) -> bytes:
    return data[:offset] + bytes((data[offset] ^ 0xFF,)) + data[offset + 1 :]


def kind(event: Any) -> str:
    tag = event.__struct_config__.tag
    assert isinstance(tag, str)
    return tag


def side_files(journal: Path) -> list[Path]:
    return sorted(journal.parent.glob(f"{journal.name}.cut-at-*"))


# --- round trip ------------------------------------------------------------------------------


def test_read_journal_round_trips_a_recorded_journal(recorded: Recorded, tmp_path: Path) -> None:
    contents = distdev.read_journal(recorded.write(tmp_path))
    assert contents.torn is None
    assert contents.size == contents.good_size == len(recorded.journals["app/child"])
    assert [kind(e) for e in contents.events if kind(e) != "digest"] == (
        ["header"] + ["call-in", "return"] * PINGS)
    for index, event in enumerate(contents.events):
        assert event.seq == index  # type: ignore[attr-defined]
        assert msgspec.convert(msgspec.to_builtins(event), type(event)) == event
    assert [e.args for e in contents.events if kind(e) == "call-in"] == [  # type: ignore[attr-defined]
        [i] for i in range(PINGS)
    ]
    assert [e.value for e in contents.events if isinstance(e, Return)] == [
        2 * i for i in range(PINGS)
    ]


def test_read_journal_header_names_format_service_and_bundle(
    recorded: Recorded, tmp_path: Path
) -> None:
    header = distdev.read_journal(recorded.write(tmp_path)).header
    assert (header.format, header.version) == ("distdev-journal", FORMAT_VERSION)
    assert (header.service, header.entry) == ("app/child", "child.py")
    assert header.hash_seed == recorded_hash_seed()
    (bundled,) = [f for f in header.bundle if f.path == "child.py"]
    assert bundled.source == recorded.child_source
    assert bundled.sha256 == hashlib.sha256(recorded.child_source).hexdigest()


@pytest.mark.parametrize("service", SERVICES)
def test_journal_writer_reencodes_read_events_byte_for_byte(
    recorded: Recorded, tmp_path: Path, service: str
) -> None:
    original = recorded.journals[service]
    contents = parse_journal(original)
    path = tmp_path / "rewritten.cbor"
    writer = distdev.JournalWriter.create(path, contents.header)
    for event in contents.events[1:]:
        assert writer.write(event) == event.seq  # type: ignore[attr-defined]
    writer.close()
    assert path.read_bytes() == original


def test_journal_file_is_a_plain_cbor_sequence(recorded: Recorded, tmp_path: Path) -> None:
    path = recorded.write(tmp_path)
    size = path.stat().st_size
    kinds = []
    with open(path, "rb") as f:
        decoder = cbor2.CBORDecoder(f)
        while f.tell() < size:
            item = decoder.decode()
            assert isinstance(item, list) and len(item) == 2
            crc, tag = item
            assert isinstance(crc, int)
            assert isinstance(tag, cbor2.CBORTag) and tag.tag == 24
            assert isinstance(tag.value, bytes)
            assert zlib.crc32(tag.value) == crc
            kinds.append(cbor2.loads(tag.value)[0])
        assert f.tell() == size
    assert kinds == [kind(e) for e in distdev.read_journal(path).events]


# --- torn tails ------------------------------------------------------------------------------


@pytest.mark.parametrize("service", SERVICES)
def test_read_journal_reports_cut_inside_last_record_as_torn(
    recorded: Recorded, tmp_path: Path, service: str
) -> None:
    original = recorded.journals[service]
    full = parse_journal(original)
    last = full.offsets[-1]
    boundary = distdev.replay(recorded.write(tmp_path, service, original[:last]))
    assert boundary.torn is None
    for cut in range(last, len(original)):
        contents = distdev.read_journal(recorded.write(tmp_path, service, original[:cut]))
        if cut == last:
            assert contents.torn is None, "a cut at a record boundary is a clean journal"
        else:
            assert contents.torn is not None, f"cut at {cut}"
            assert (contents.torn.offset, contents.torn.seq) == (last, len(full.events) - 1)
            assert contents.good_size == last
        assert contents.events == full.events[:-1]
        assert contents.offsets == full.offsets[:-1]
        restored = distdev.replay(contents)
        assert restored.state() == boundary.state()
        assert restored.events == boundary.events
        assert restored.stopped_inside_call == boundary.stopped_inside_call


def test_replay_of_torn_journal_keeps_state_up_to_last_good_record(
    recorded: Recorded, tmp_path: Path
) -> None:
    original = recorded.journals["app/child"]
    # Cut inside the last call-in: the fourth call never happened as far as replay knows.
    contents = parse_journal(original)
    last_call = max(o for e, o in zip(contents.events, contents.offsets) if isinstance(e, CallIn))
    restored = distdev.replay(recorded.write(tmp_path, data=original[: last_call + 5]))
    assert restored.torn is not None
    assert restored.state() == {"calls": list(range(PINGS - 1))}


def test_journal_repair_moves_every_torn_tail_to_a_side_file(
    recorded: Recorded, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    original = recorded.journals["app/child"]
    full = parse_journal(original)
    last = full.offsets[-1]
    for cut in range(last + 1, len(original)):
        path = recorded.write(tmp_path, data=original[:cut])
        assert run_cli(["journal", "repair", str(path)]) == 0
        (side,) = side_files(path)
        assert side.name == f"journal.cbor.cut-at-{last}"
        assert path.read_bytes() + side.read_bytes() == original[:cut], "bytes were lost"
        repaired = distdev.read_journal(path)
        assert repaired.torn is None
        assert repaired.events == full.events[:-1]
        side.unlink()
    assert str(last) in capsys.readouterr().out


def test_repair_journal_leaves_a_clean_journal_alone(recorded: Recorded, tmp_path: Path) -> None:
    path = recorded.write(tmp_path)
    events = len(distdev.read_journal(path).events)
    report = distdev.repair_journal(path)
    assert (report.kept_events, report.cut_bytes, report.side_file) == (events, 0, None)
    assert path.read_bytes() == recorded.journals["app/child"]
    assert side_files(path) == []


def test_journal_writer_append_to_refuses_torn_journal_until_repaired(
    recorded: Recorded, tmp_path: Path
) -> None:
    original = recorded.journals["app/child"]
    path = recorded.write(tmp_path, data=original[:-3])
    with pytest.raises(JournalError, match="journal repair"):
        distdev.JournalWriter.append_to(path)
    distdev.repair_journal(path)
    writer = distdev.JournalWriter.append_to(path)
    last = parse_journal(original).events[-1]  # the record the tear cut, written again
    assert writer.write(last) == last.seq
    writer.close()
    assert path.read_bytes() == original


def test_repair_journal_never_overwrites_an_earlier_side_file(
    recorded: Recorded, tmp_path: Path
) -> None:
    original = recorded.journals["app/child"]
    last = parse_journal(original).offsets[-1]
    first_tail, second_tail = original[last:-1], original[last:-5]
    path = recorded.write(tmp_path, data=original[:last] + first_tail)
    distdev.repair_journal(path)
    with open(path, "ab") as f:
        f.write(second_tail)
    distdev.repair_journal(path)
    kept = sorted(side.read_bytes() for side in side_files(path))
    assert kept == sorted([first_tail, second_tail])


# --- corruption ------------------------------------------------------------------------------

DAMAGE = {
    "payload": lambda start, end: end - 2,
    "crc": lambda start, end: start + 3,
    "array-head": lambda start, end: start,
    "tag": lambda start, end: start + 6,
}


def damaged(recorded: Recorded, where: str) -> tuple[bytes, int, int]:
    """The child journal with one byte flipped in record len//2; its bytes, offset and seq."""
    original = recorded.journals["app/child"]
    offsets = parse_journal(original).offsets
    seq = len(offsets) // 2
    offset = offsets[seq]
    return flipped(original, DAMAGE[where](offset, offsets[seq + 1])), offset, seq


@pytest.mark.parametrize("where", sorted(DAMAGE))
def test_read_journal_names_offset_and_seq_of_corrupt_record(
    recorded: Recorded, tmp_path: Path, where: str
) -> None:
    data, offset, seq = damaged(recorded, where)
    with pytest.raises(JournalCorruptError) as caught:
        distdev.read_journal(recorded.write(tmp_path, data=data))
    assert (caught.value.offset, caught.value.seq) == (offset, seq)
    assert f"byte offset {offset}" in str(caught.value)
    assert "journal repair --force" in str(caught.value)


@pytest.mark.parametrize("at", [0, 3, 12, 100])  # its frame, checksum, length, payload
def test_a_damaged_header_is_reported_with_its_offset_and_index_and_never_cut(
    recorded: Recorded, tmp_path: Path, at: int
) -> None:
    data = flipped(recorded.journals["app/child"], at)
    path = recorded.write(tmp_path, data=data)
    with pytest.raises(JournalCorruptError) as caught:
        distdev.read_journal(path)
    assert (caught.value.offset, caught.value.seq) == (0, 0)
    assert "byte offset 0 (record 0, its header)" in str(caught.value)
    with pytest.raises(JournalCorruptError):
        distdev.repair_journal(path, force=True)
    assert path.read_bytes() == data


def test_a_file_that_is_no_journal_at_all_is_not_called_a_damaged_one(tmp_path: Path) -> None:
    path = tmp_path / "notes.cbor"
    path.write_bytes(b"\x82\x01\x02 and then some text")
    with pytest.raises(JournalFormatError, match="is not a distdev journal"):
        distdev.read_journal(path)


@pytest.mark.parametrize("where", ["payload", "crc"])
def test_journal_repair_cuts_corruption_only_with_force(
    recorded: Recorded, tmp_path: Path, where: str, capsys: pytest.CaptureFixture[str]
) -> None:
    data, offset, seq = damaged(recorded, where)
    path = recorded.write(tmp_path, data=data)
    assert run_cli(["journal", "repair", str(path)]) == 2
    assert f"byte offset {offset}" in capsys.readouterr().err
    assert path.read_bytes() == data and side_files(path) == []

    assert run_cli(["journal", "repair", "--force", str(path)]) == 0
    (side,) = side_files(path)
    assert side.name == f"journal.cbor.cut-at-{offset}"
    assert path.read_bytes() + side.read_bytes() == data, "bytes were lost"
    repaired = distdev.read_journal(path)
    assert repaired.torn is None
    assert repaired.events == parse_journal(recorded.journals["app/child"]).events[:seq]


# --- arbitrary bytes -------------------------------------------------------------------------


@given(st.binary(min_size=0, max_size=4096))
@settings(max_examples=300, deadline=None, database=None)
def test_parse_journal_random_bytes_raise_only_journal_errors(data: bytes) -> None:
    try:
        parse_journal(data)
    except JournalError:
        pass


@given(st.data())
@settings(max_examples=300, deadline=None, database=None)
def test_parse_journal_any_changed_byte_is_refused_or_reported(
    recorded: Recorded, data: st.DataObject
) -> None:
    original = recorded.journals["app/child"]
    expected = parse_journal(original).events
    offset = data.draw(st.integers(0, len(original) - 1), label="offset")
    value = data.draw(st.integers(0, 255), label="value")
    mutated = original[:offset] + bytes((value,)) + original[offset + 1 :]
    try:
        contents = parse_journal(mutated)
    except JournalError:
        return
    assert contents.events == expected[: len(contents.events)], "an event changed silently"
    if contents.torn is None:
        assert len(contents.events) == len(expected), "events were dropped silently"


_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
    | st.binary(max_size=8),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(max_size=4) | st.integers(), inner, max_size=3),
    max_leaves=12,
)
_trees = _values | st.builds(
    lambda k, seq, fields: [k, seq, *fields],
    st.sampled_from([*sorted(EVENT_TYPES), "no-such-kind"]),
    st.integers(-1, 3) | st.text(max_size=2),
    st.lists(_values, max_size=10),
)


@given(_trees, st.booleans())
@settings(max_examples=300, deadline=None, database=None)
def test_parse_journal_intact_record_with_bad_content_is_corruption(
    recorded: Recorded, tree: Any, more_after: bool
) -> None:
    original = recorded.journals["app/child"]
    header_end = parse_journal(original).offsets[1]
    data = original[:header_end] + frame(cbor2.dumps(tree))
    if more_after:
        data += frame(cbor2.dumps(["output", 2, "stdout", "hi"]))
    try:
        contents = parse_journal(data)
    except JournalCorruptError as exc:
        assert (exc.offset, exc.seq) == (header_end, 1)
        return
    assert contents.torn is None and len(contents.events) == 2 + more_after
    assert msgspec.to_builtins(contents.events[1])[:2] == tree[:2]


# --- files that are not journals -------------------------------------------------------------


def _future_header() -> Header:
    return Header(
        seq=0, format=FORMAT_NAME, version=99, service="app/child", distdev="9.9.9",
        python="3.99.0", hash_seed="0", app_root="/nowhere", entry="child.py", bundle=[],
    )


def _header_bytes(header: Header, tmp_path: Path) -> bytes:
    path = tmp_path / "header-only.cbor"
    distdev.JournalWriter.create(path, header).close()
    return path.read_bytes()


def test_read_journal_refuses_future_format_version(tmp_path: Path) -> None:
    path = tmp_path / "future.cbor"
    writer = distdev.JournalWriter.create(path, _future_header())
    writer.close()
    with pytest.raises(JournalFormatError) as caught:
        distdev.read_journal(path)
    message = str(caught.value)
    assert "version 99; this distdev reads versions 1, 2" in message
    assert "Use a distdev release" in message and "9.9.9" in message


def test_read_journal_refuses_future_version_before_reading_its_records(tmp_path: Path) -> None:
    # A newer format's records must not be mistaken for corruption (nor cut by repair --force).
    data = _header_bytes(_future_header(), tmp_path)
    data += frame(cbor2.dumps(["kind-from-the-future", 1, {"x": 1}]))
    data += frame(cbor2.dumps(["output", 2, "stdout", "hi"]))
    path = tmp_path / "future.cbor"
    path.write_bytes(data)
    with pytest.raises(JournalFormatError, match="version 99"):
        distdev.read_journal(path)
    with pytest.raises(JournalFormatError):
        distdev.repair_journal(path, force=True)
    assert path.read_bytes() == data


NOT_JOURNALS: dict[str, bytes] = {
    "text": b"hello, this is a text file\n",
    "cbor-map": cbor2.dumps({"a": 1}),
    "framed-non-event": frame(cbor2.dumps({"a": 1})),
}


@pytest.mark.parametrize("name", sorted(NOT_JOURNALS))
def test_read_journal_refuses_foreign_file_saying_what_to_pass(tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.bin"
    path.write_bytes(NOT_JOURNALS[name])
    with pytest.raises(JournalFormatError) as caught:
        distdev.read_journal(path)
    assert str(path) in str(caught.value)
    assert "Pass the journal.cbor of a service" in str(caught.value)


def test_read_journal_refuses_empty_file_saying_what_to_pass(tmp_path: Path) -> None:
    path = tmp_path / "empty.cbor"
    path.write_bytes(b"")
    with pytest.raises(JournalFormatError) as caught:
        distdev.read_journal(path)
    assert "journal.cbor" in str(caught.value)


def test_read_journal_refuses_headerless_file_saying_what_to_pass(tmp_path: Path) -> None:
    path = tmp_path / "headerless.cbor"
    path.write_bytes(frame(cbor2.dumps(["output", 0, "stdout", "hi"])))
    with pytest.raises(JournalFormatError) as caught:
        distdev.read_journal(path)
    assert "journal.cbor" in str(caught.value)


@pytest.mark.parametrize("what", ["missing", "folder"])
def test_read_journal_names_missing_file_and_folder(tmp_path: Path, what: str) -> None:
    path = tmp_path / "journal.cbor"
    if what == "folder":
        path.mkdir()
    expected = "no journal at" if what == "missing" else "pass the journal.cbor file inside"
    with pytest.raises(JournalError, match=expected):
        distdev.read_journal(path)


@pytest.mark.parametrize("what", ["missing", "folder"])
def test_repair_journal_names_missing_file_and_folder(tmp_path: Path, what: str) -> None:
    path = tmp_path / "journal.cbor"
    if what == "folder":
        path.mkdir()
    with pytest.raises(JournalError) as caught:
        distdev.repair_journal(path)
    with pytest.raises(JournalError) as reference:
        distdev.read_journal(path)
    assert str(caught.value) == str(reference.value)


# --- the command line ------------------------------------------------------------------------


@pytest.fixture
def damaged_files(recorded: Recorded, tmp_path: Path) -> dict[str, Path]:
    """One file per kind of damage, plus paths that are missing or a folder."""
    original = recorded.journals["app/child"]
    corrupt, _, _ = damaged(recorded, "payload")
    files = {
        "torn": original[:-3],
        "corrupt": corrupt,
        "random": random.Random(0).randbytes(1024),
    }
    paths = {}
    for name, data in files.items():
        paths[name] = tmp_path / f"{name}.cbor"
        paths[name].write_bytes(data)
    paths["missing"] = tmp_path / "missing.cbor"
    paths["folder"] = tmp_path / "folder"
    paths["folder"].mkdir()
    return paths


CLI_CASES = [
    # (command, file, exit code, text that must appear in stdout + stderr)
    (["replay"], "torn", 0, "torn record at byte {torn}"),
    (["inspect"], "torn", 0, "torn final record at byte {torn}"),
    (["journal", "check"], "torn", 2, "torn record at byte {torn}"),
    (["replay"], "corrupt", 2, "corrupt at byte offset {corrupt}"),
    (["inspect"], "corrupt", 2, "corrupt at byte offset {corrupt}"),
    (["journal", "check"], "corrupt", 2, "corrupt at byte offset {corrupt}"),
    (["replay"], "random", 2, "is not a distdev journal"),
    (["journal", "check"], "random", 2, "is not a distdev journal"),
    (["replay"], "missing", 2, "no journal at"),
    (["inspect"], "missing", 2, "no journal at"),
    (["replay"], "folder", 2, "is a folder"),
    (["journal", "check"], "folder", 2, "is a folder"),
]


@pytest.mark.parametrize(
    ("command", "file", "code", "needle"),
    CLI_CASES,
    ids=[f"{' '.join(c)}-{f}" for c, f, _, _ in CLI_CASES],
)
def test_cli_reports_damaged_journal_without_traceback(
    recorded: Recorded,
    damaged_files: dict[str, Path],
    command: list[str],
    file: str,
    code: int,
    needle: str,
) -> None:
    offsets = parse_journal(recorded.journals["app/child"]).offsets
    expected = needle.format(torn=offsets[-1], corrupt=offsets[len(offsets) // 2])
    result = run_distdev(*command, damaged_files[file])
    output = result.stdout + result.stderr
    assert "Traceback" not in output
    assert result.returncode == code, output
    assert expected in output
    if command == ["replay"] and file == "torn":
        assert "warning" in result.stderr
        assert '"calls": [' in result.stdout
