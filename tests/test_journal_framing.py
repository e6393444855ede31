"""The journal's records framed in C (``journal/_framing.c``) are the Python reference's, byte
for byte: every width of seq and of payload length, records given in pieces or whole, the
buffer handed on once full, and bad pieces refused with nothing appended."""

from __future__ import annotations

import zlib

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from distdev.journal import _codec
from distdev.journal import _framing as native  # the test machines build it: its absence fails
from distdev.journal._codec import RecordBuffer, Records, frame_at

SEQ_EDGES = [0, 1, 23, 24, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**64 - 1]
LENGTH_EDGES = [0, 1, 22, 23, 24, 254, 255, 256, 65534, 65535, 65536, 70000]


def test_the_package_frames_records_in_c() -> None:
    # Built with the package wherever a compiler is (the test machines have one); the
    # reference is the fallback of a build without, and must not be what the tests measure.
    assert _codec.NATIVE_FRAMING
    assert _codec.FastRecordBuffer is native.RecordBuffer


def _both(next_seq: int, flush_at: int = 1 << 40) -> tuple[list[int], list[int], Records,
                                                             Records]:
    full_c: list[int] = []
    full_py: list[int] = []
    c = native.RecordBuffer(next_seq, flush_at, lambda: full_c.append(len(c)))
    py = RecordBuffer(next_seq, flush_at, lambda: full_py.append(len(py)))
    return full_c, full_py, c, py


@pytest.mark.parametrize("seq", SEQ_EDGES)
@pytest.mark.parametrize("length", LENGTH_EDGES)
def test_every_width_of_seq_and_length_frames_as_the_reference_does(seq: int, length: int) -> None:
    _, _, c, py = _both(seq)
    start = b"\x86" + cbor2.dumps("call-out")
    rest = (cbor2.dumps("app/worker"), bytes(range(256)) * (length // 256) + bytes(length % 256))
    assert c.append(start, *rest) == py.append(start, *rest) == seq
    assert c.peek() == py.peek()
    payload, end = frame_at(c.peek(), 0)
    assert end == len(c)
    assert payload == start + cbor2.dumps(seq) + b"".join(rest)
    if seq < 2**64 - 1:
        assert c.next_seq == py.next_seq == seq + 1


@settings(max_examples=300, deadline=None)
@given(seq=st.integers(0, 2**40), records=st.lists(
    st.tuples(st.booleans(), st.lists(st.binary(max_size=300), min_size=1, max_size=6)),
    min_size=1, max_size=12))
def test_random_records_in_pieces_or_whole_frame_as_the_reference_does(
        seq: int, records: list[tuple[bool, list[bytes]]]) -> None:
    _, _, c, py = _both(seq)
    for whole, pieces in records:
        if whole:
            assert c.append_payload(b"".join(pieces)) == py.append_payload(b"".join(pieces))
        else:
            assert c.append(*pieces) == py.append(*pieces)
    assert c.peek() == py.peek()
    assert c.next_seq == py.next_seq == seq + len(records)
    offset, data = 0, c.peek()
    for _ in records:
        _, offset = frame_at(data, offset)
    assert offset == len(data)


def test_a_buffer_past_its_limit_is_handed_on_after_the_record_that_filled_it() -> None:
    full_c, full_py, c, py = _both(0, flush_at=100)
    for i in range(10):
        c.append(b"\x83", bytes(30 + i))
        py.append(b"\x83", bytes(30 + i))
    # Each time the buffer holds more than 100 bytes, with the whole record in it.
    assert full_c == full_py
    assert full_c and all(size > 100 for size in full_c)


def test_records_taken_as_they_fill_the_buffer_are_every_record_in_order() -> None:
    flushed: list[bytes] = []

    def flush() -> None:
        flushed.append(c.take())

    c = native.RecordBuffer(0, 64, flush)
    for i in range(50):
        c.append(b"\x82", cbor2.dumps(bytes(i % 7 * 10)))
    data = b"".join(flushed) + c.peek()
    offset = 0
    for seq in range(50):
        payload, offset = frame_at(data, offset)
        assert cbor2.loads(payload) == [seq, bytes(seq % 7 * 10)]
    assert offset == len(data)


def test_a_piece_that_is_not_bytes_is_refused_and_nothing_is_appended() -> None:
    c = native.RecordBuffer(7, 1 << 20, lambda: None)
    c.append(b"\x81")
    before = c.peek()
    with pytest.raises(TypeError, match="bytes"):
        c.append(b"\x82", "text")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="bytes"):
        c.append_payload(bytearray(b"\x80"))  # type: ignore[arg-type]
    assert c.peek() == before and c.next_seq == 8


def test_an_error_raised_by_the_full_buffers_handler_reaches_the_writer() -> None:
    def broken() -> None:
        raise OSError("disk full")

    c = native.RecordBuffer(0, 10, broken)
    with pytest.raises(OSError, match="disk full"):
        c.append(b"\x82", bytes(20))
    assert c.next_seq == 1  # the record is in the buffer: a later flush writes it
    assert frame_at(c.peek(), 0)[1] == len(c)


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=5000))
def test_the_checksum_is_zlibs(data: bytes) -> None:
    assert native.crc32(data) == zlib.crc32(data)
    assert native.crc32(memoryview(data)) == zlib.crc32(data)
