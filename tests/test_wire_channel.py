"""The transport's pieces below the engine: a connection end's frames (``Channel``) over real
socket pairs, and the busy-poll policy's bounds as logic.

What a real deployment does with them (calls, timeouts with ``may_have_run``, restarts) is
``tests/test_local_engine.py`` and ``tests/test_faults.py``; here, what those rely on: a frame
arrives whole however the bytes are split, several frames in one read are kept apart, a frame
already there is read at once and one (or the end) that comes while polling is read by the poll,
a long wait naps first and a frame wakes the nap at once, a wait never ends before its deadline
and always ends after it, and a poll never exceeds its cap, is off on one CPU, and stops where
waits are long or the machine stays crowded.
"""

from __future__ import annotations

import ctypes
import socket
import sys
import threading
import time
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.engines import wait_until

from distdev.engines import _poll, _wire
from distdev.engines._poll import BusyPoll, poll_enabled
from distdev.engines._wire import MAX_FRAME, Call, Channel, FrameError, Reply, _encoder

CAP = 200e-6


@pytest.fixture(autouse=True)
def unpaused(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with polling not paused: a real poll of an earlier test on this busy
    machine may have paused this process's polling (a policy test reads the budget)."""
    monkeypatch.setattr(_poll, "_paused_until", 0.0)
    monkeypatch.setattr(_poll, "_kept_waiting", 0.0)
    monkeypatch.setattr(_poll, "_pause", 0.0)


@pytest.fixture
def pair() -> Iterator[tuple[Channel, socket.socket]]:
    """A channel and the raw socket at its other end."""
    mine, theirs = socket.socketpair()
    channel = Channel(mine, BusyPoll(CAP, enabled=True))
    try:
        yield channel, theirs
    finally:
        channel.close()
        theirs.close()


def framed(message: Call | Reply) -> bytes:
    body = _encoder.encode(message)
    return len(body).to_bytes(4, "big") + body


def a_call(n: int, args: bytes = b"\x80") -> Call:
    return Call(n, "caller", "chain", n, "export", args, b"\xa0", None)


# --- frames --------------------------------------------------------------------------------


def test_a_frame_sent_one_byte_at_a_time_arrives_whole(
    pair: tuple[Channel, socket.socket],
) -> None:
    channel, peer = pair
    data = framed(a_call(1))

    def trickle() -> None:
        for i in range(len(data)):
            peer.send(data[i:i + 1])

    sender = threading.Thread(target=trickle)
    sender.start()
    assert channel.receive(deadline=time.monotonic() + 60) == a_call(1)
    sender.join()


def test_frames_that_arrive_together_are_handed_out_one_by_one(
    pair: tuple[Channel, socket.socket],
) -> None:
    channel, peer = pair
    peer.sendall(b"".join(framed(a_call(n)) for n in range(1, 6)))
    assert [channel.receive() for _ in range(5)] == [a_call(n) for n in range(1, 6)]


def test_a_frame_larger_than_the_buffer_arrives_whole_and_the_next_one_too(
    pair: tuple[Channel, socket.socket],
) -> None:
    channel, peer = pair
    big = a_call(1, bytes(range(256)) * (3 * Channel.BUFFER // 256))
    sender = threading.Thread(target=peer.sendall,
                              args=(framed(big) + framed(a_call(2)),))
    sender.start()
    assert channel.receive() == big
    assert channel.receive() == a_call(2)
    sender.join()


def test_sent_frames_are_length_prefixed_messages(pair: tuple[Channel, socket.socket]) -> None:
    channel, peer = pair
    reply = Reply(7, True, b"\x05")
    channel.send(reply)
    channel.send(reply)
    expected = framed(reply) * 2
    got = b""
    while len(got) < len(expected):
        got += peer.recv(65536)
    assert got == expected


def test_an_end_between_frames_is_eof_and_inside_one_is_a_frame_error() -> None:
    for sent, error in [(b"", EOFError), (framed(a_call(1))[:2], FrameError),
                        (framed(a_call(1))[:-1], FrameError)]:
        mine, theirs = socket.socketpair()
        channel = Channel(mine)
        theirs.sendall(sent)
        theirs.close()
        with pytest.raises(error):
            channel.receive()
        channel.close()


def test_a_frame_over_the_limit_is_refused_before_it_is_read(
    pair: tuple[Channel, socket.socket],
) -> None:
    channel, peer = pair
    peer.sendall((MAX_FRAME + 1).to_bytes(4, "big"))
    with pytest.raises(FrameError, match="over the limit"):
        channel.receive()


# --- polling --------------------------------------------------------------------------------


class WatchedPoll(BusyPoll):
    """A policy that polls for as long as a test needs, and says how each poll ended."""

    def __init__(self) -> None:
        super().__init__(60.0, enabled=True)
        self.ended: list[bool] = []

    def polled(self, seconds: float, cpu: float, now: float, caught: bool,
               others: float = 0.0) -> None:
        self.ended.append(caught)
        super().polled(seconds, cpu, now, caught, others)


def polling(channel: Channel, monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Set once a receive on ``channel`` has looked for its frame and not found it: from then
    on, it polls (with a ``WatchedPoll``) until the frame comes."""
    looked = threading.Event()
    take = channel._take

    def watched() -> int | None:
        n = take()
        if n is None:
            looked.set()
        return n

    monkeypatch.setattr(channel, "_take", watched)
    return looked


def receiving(channel: Channel) -> tuple[threading.Thread, list[object]]:
    """``channel.receive()`` on a thread of its own: the thread and what it got (or raised)."""
    got: list[object] = []

    def receive() -> None:
        try:
            got.append(channel.receive())
        except (EOFError, FrameError) as exc:
            got.append(exc)

    thread = threading.Thread(target=receive)
    thread.start()
    return thread, got


def test_a_frame_already_there_is_read_without_a_poll() -> None:
    mine, peer = socket.socketpair()
    poll = WatchedPoll()
    channel = Channel(mine, poll)
    try:
        peer.sendall(framed(a_call(1)))
        assert channel.receive() == a_call(1)
        assert poll.ended == [], "nothing to poll for: no poll counted"
    finally:
        channel.close()
        peer.close()


def test_a_frame_that_comes_while_polling_is_read_by_the_poll(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mine, peer = socket.socketpair()
    poll = WatchedPoll()
    channel = Channel(mine, poll)
    try:
        looked = polling(channel, monkeypatch)
        thread, got = receiving(channel)
        assert looked.wait(30), "the receive did not poll"
        peer.sendall(framed(a_call(2)))
        thread.join()
        assert got == [a_call(2)]
        assert poll.ended == [True], "the poll caught the frame: no blocking recv after it"
    finally:
        channel.close()
        peer.close()


def test_an_end_that_comes_while_polling_is_the_end(monkeypatch: pytest.MonkeyPatch) -> None:
    mine, peer = socket.socketpair()
    poll = WatchedPoll()
    channel = Channel(mine, poll)
    try:
        looked = polling(channel, monkeypatch)
        thread, got = receiving(channel)
        assert looked.wait(30), "the receive did not poll"
        peer.close()
        thread.join()
        assert len(got) == 1 and type(got[0]) is EOFError
        assert poll.ended == [True]
    finally:
        channel.close()


# --- napping through a long wait -------------------------------------------------------------


class NappingPoll(BusyPoll):
    """A policy whose every wait naps ``nap`` seconds, then polls for as long as a test needs;
    it says how late each nap that ran out ended, and how each poll ended."""

    def __init__(self, nap: float) -> None:
        super().__init__(CAP, enabled=True)
        self.fixed_nap = nap
        self.late_by: list[float] = []
        self.ran_out = threading.Event()
        self.ended: list[bool] = []

    def nap(self) -> float:
        return self.fixed_nap

    def budget(self, now: float) -> float:
        return 60.0

    def napped(self, late: float) -> None:
        self.late_by.append(late)
        super().napped(late)
        self.ran_out.set()

    def polled(self, seconds: float, cpu: float, now: float, caught: bool,
               others: float = 0.0) -> None:
        self.ended.append(caught)


def napping(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Set once a receive has started its nap."""
    started = threading.Event()
    real = _wire._select

    def watched(*args: object) -> object:
        started.set()
        return real(*args)

    monkeypatch.setattr(_wire, "_select", watched)
    return started


def test_a_frame_that_comes_during_a_nap_wakes_it_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mine, peer = socket.socketpair()
    poll = NappingPoll(600.0)  # a nap that would outlast the test
    channel = Channel(mine, poll)
    try:
        started = napping(monkeypatch)
        thread, got = receiving(channel)
        assert started.wait(30), "the receive did not nap"
        peer.sendall(framed(a_call(4)))
        thread.join(30)
        assert not thread.is_alive(), "the frame did not end the nap"
        assert got == [a_call(4)]
        assert poll.late_by == [] and poll.ended == [], "read as it woke: no poll after it"
    finally:
        channel.close()
        peer.close()


def test_a_nap_that_runs_out_polls_and_the_poll_catches_the_frame() -> None:
    mine, peer = socket.socketpair()
    poll = NappingPoll(1e-3)
    channel = Channel(mine, poll)
    try:
        thread, got = receiving(channel)
        assert poll.ran_out.wait(30), "the receive did not nap"
        assert len(poll.late_by) == 1 and poll.late_by[0] >= 0, "the nap ran out, measured"
        peer.sendall(framed(a_call(5)))
        thread.join(30)
        assert got == [a_call(5)]
        assert poll.ended == [True]
    finally:
        channel.close()
        peer.close()


def test_a_long_wait_naps_until_shortly_before_its_answer_then_polls_within_the_cap() -> None:
    poll = BusyPoll(CAP, enabled=True)
    now = time.monotonic()
    for _ in range(80):
        poll.observe(150e-6)  # a durable callee's answers: about 150 us after the call
    assert poll.nap() == pytest.approx(BusyPoll.NAP_SHARE * 150e-6 - BusyPoll.LATE, rel=0.05)
    assert poll.budget(now) == pytest.approx(min(CAP, 2 * 150e-6 - poll.nap()), rel=0.05), \
        "it polls until twice the average, as a short wait does, within the cap"
    for _ in range(80):
        poll.observe(450e-6)  # past the cap: napped through, then polled, within the cap
    assert poll.nap() > 250e-6 and 0 < poll.budget(now) <= CAP
    for _ in range(80):
        poll.observe(2 * BusyPoll.NAP_LIMIT)  # too long to be worth a nap: it blocks
    assert poll.nap() == 0.0 and poll.budget(now) == 0.0
    for _ in range(80):
        poll.observe(5.0)  # an idle connection: no nap, no poll
    assert poll.nap() == 0.0 and poll.budget(now) == 0.0
    for _ in range(80):
        poll.observe(10e-6)  # answers within moments: no nap, a short poll
    assert poll.nap() == 0.0 and 15e-6 < poll.budget(now) < 25e-6


def test_naps_follow_how_late_they_end() -> None:
    poll = BusyPoll(CAP, enabled=True)
    for _ in range(80):
        poll.observe(300e-6)
    before = poll.nap()
    for _ in range(80):
        poll.napped(5e-6)  # a machine whose timers end on time: naps reach closer
    assert poll.nap() > before + 30e-6
    poll.napped(-1.0)
    poll.napped(60.0)
    assert 0.0 <= poll.late <= BusyPoll.NAP_LIMIT


def test_a_socket_that_cannot_be_waited_on_never_naps() -> None:
    poll = BusyPoll(CAP, enabled=True, naps=False)
    now = time.monotonic()
    for _ in range(80):
        poll.observe(450e-6)
    assert poll.nap() == 0.0 and poll.budget(now) == 0.0, "past the cap and no nap: it blocks"
    for _ in range(80):
        poll.observe(150e-6)
    assert poll.nap() == 0.0 and poll.budget(now) == CAP


@pytest.mark.skipif(sys.platform != "linux", reason="timer slack is Linux's")
def test_a_thread_that_naps_has_its_timer_slack_cut() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    pr_get_timerslack = 30
    slack: list[int] = []

    def nap_on_a_fresh_thread() -> None:
        # A thread inherits its creator's slack, which an earlier nap may have cut: start
        # from Linux's default.
        libc.prctl(_poll._PR_SET_TIMERSLACK, 50_000, 0, 0, 0)
        slack.append(libc.prctl(pr_get_timerslack, 0, 0, 0, 0))
        _poll.precise_timers()
        slack.append(libc.prctl(pr_get_timerslack, 0, 0, 0, 0))

    thread = threading.Thread(target=nap_on_a_fresh_thread)
    thread.start()
    thread.join()
    assert slack[0] > 1 and slack[1] == 1


# --- kernel timeouts -----------------------------------------------------------------------


def test_a_receive_times_out_at_its_deadline_never_before(
    pair: tuple[Channel, socket.socket],
) -> None:
    channel, _ = pair
    deadline = time.monotonic() + 0.3
    with pytest.raises(TimeoutError):
        channel.receive(deadline=deadline)
    assert time.monotonic() >= deadline


def test_a_wait_the_kernel_timeout_cut_short_goes_on_until_the_frame_arrives(
    pair: tuple[Channel, socket.socket], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A kernel timeout set for an earlier, shorter wait fires long before this deadline: the
    receive sets it again, to the time left, and keeps waiting."""
    channel, peer = pair
    channel._set_timeout(0.001)
    set_to: list[float | None] = []
    real = channel._set_timeout

    def recording(seconds: float | None) -> None:
        set_to.append(seconds)
        real(seconds)

    monkeypatch.setattr(channel, "_set_timeout", recording)
    got: list[object] = []
    receiver = threading.Thread(
        target=lambda: got.append(channel.receive(deadline=time.monotonic() + 60)))
    receiver.start()
    wait_until(lambda: set_to, 30, "the kernel timeout to fire and be set again")
    assert set_to[0] is not None and 1 < set_to[0] <= 60
    peer.sendall(framed(a_call(3)))
    receiver.join()
    assert got == [a_call(3)]


def test_a_send_the_peer_does_not_read_times_out_at_its_deadline(
    pair: tuple[Channel, socket.socket],
) -> None:
    channel, _ = pair
    deadline = time.monotonic() + 0.3
    with pytest.raises(TimeoutError):
        channel.send(a_call(1, bytes(8 * 1024 * 1024)), deadline)
    assert time.monotonic() >= deadline


def test_a_deadline_already_past_fails_without_waiting(
    pair: tuple[Channel, socket.socket],
) -> None:
    channel, _ = pair
    with pytest.raises(TimeoutError):
        channel.receive(deadline=time.monotonic() - 1)


def test_a_channel_without_deadline_clears_the_kernel_timeout(
    pair: tuple[Channel, socket.socket],
) -> None:
    channel, peer = pair
    peer.sendall(framed(a_call(1)))
    assert channel.receive(deadline=time.monotonic() + 60) == a_call(1)
    assert channel._timeout is not None
    peer.sendall(framed(a_call(2)))
    assert channel.receive() == a_call(2)
    assert channel._timeout is None
    timeval = channel.sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, 16)
    assert timeval == bytes(len(timeval)), "no timeout left on the socket"


# --- the busy-poll policy ------------------------------------------------------------------


def test_polling_is_off_on_one_cpu_and_with_a_zero_cap() -> None:
    assert poll_enabled(CAP, cpus=2)
    assert not poll_enabled(CAP, cpus=1)
    assert not poll_enabled(0.0, cpus=8)
    assert BusyPoll(0.0, enabled=True).budget(time.monotonic()) == 0.0
    assert BusyPoll(CAP, enabled=False).budget(time.monotonic()) == 0.0


@pytest.mark.parametrize("raw, error", [("abc", "not a number"), ("-5", "negative")])
def test_a_bad_cap_says_what_to_set(raw: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        _poll._cap_seconds({"DISTDEV_BUSY_POLL_US": raw})
    assert _poll._cap_seconds({"DISTDEV_BUSY_POLL_US": "0"}) == 0.0
    assert _poll._cap_seconds({}) == 200e-6


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=10, allow_nan=False), max_size=200))
def test_a_poll_never_exceeds_its_cap(waits: list[float]) -> None:
    poll = BusyPoll(CAP, enabled=True)
    now = time.monotonic()
    for waited in waits:
        assert 0.0 <= poll.budget(now) <= CAP
        poll.observe(waited)
    assert 0.0 <= poll.budget(now) <= CAP


def test_a_poll_follows_its_recent_waits() -> None:
    poll = BusyPoll(CAP, enabled=True)
    now = time.monotonic()
    for _ in range(40):
        poll.observe(10e-6)  # answers come in 10 us: poll about twice that
    assert 15e-6 < poll.budget(now) < 25e-6
    for _ in range(40):
        poll.observe(5.0)  # an idle connection: no polling at all
    assert poll.budget(now) == 0.0
    quick = 0
    while poll.budget(now) == 0.0:
        poll.observe(10e-6)
        quick += 1
    assert quick <= 8, "a connection busy again polls again within a few waits"


def test_one_thread_per_process_polls_at_a_time() -> None:
    first, second = BusyPoll(CAP, enabled=True), BusyPoll(CAP, enabled=True)
    assert first.claim()
    try:
        assert not second.claim()
    finally:
        first.release()
    assert second.claim()
    second.release()


def test_polls_kept_from_the_cpu_again_and_again_pause_polling_in_the_process() -> None:
    poll, other = BusyPoll(CAP, enabled=True), BusyPoll(CAP, enabled=True)
    now = 1000.0
    poll.polled(100e-6, 95e-6, now, True)  # it had the CPU: nothing changes
    assert poll.budget(now) > 0
    poll.polled(100e-6, 10e-6, now, True)  # it waited for a CPU: a moment's preemption
    poll.polled(100e-6, 95e-6, now, True)
    poll.polled(100e-6, 10e-6, now, True)  # and again, but not in a row: the machine copes
    assert poll.budget(now) > 0
    for _ in range(3):  # three in a row: the machine is crowded
        poll.polled(100e-6, 10e-6, now, True)
    until = _poll._paused_until
    assert until > now
    assert poll.budget(until - 1e-6) == other.budget(until - 1e-6) == 0.0
    assert poll.budget(until) > 0
    poll.polled(5e-6, 0.0, now + 2, True)  # a frame caught at once: it had the CPU
    assert poll.budget(now + 2) > 0
    later = now + 2 + BusyPoll.PAUSE_MAX
    poll.polled(100e-6, 10e-6, later, True)  # still crowded: paused again at once
    assert poll.budget(later + BusyPoll.PAUSE_FIRST / 2) == 0.0


def test_a_pause_grows_while_the_crowding_lasts_and_is_short_again_once_it_ends() -> None:
    poll = BusyPoll(CAP, enabled=True)
    now = 1000.0

    def pauses_of_polls_kept_waiting(count: int) -> list[float]:
        nonlocal now
        pauses = []
        for _ in range(count):  # each as the pause before it ends
            poll.polled(100e-6, 10e-6, now, True)
            if _poll._paused_until > now:
                pauses.append(round(_poll._paused_until - now, 6))
                now = _poll._paused_until
        return pauses

    first = BusyPoll.PAUSE_FIRST
    assert pauses_of_polls_kept_waiting(12) == [
        *(first * 2 ** n for n in range(7)), BusyPoll.PAUSE_MAX, BusyPoll.PAUSE_MAX,
        BusyPoll.PAUSE_MAX]
    for _ in range(12):  # the crowding is over: polls catch their frames at once
        poll.polled(5e-6, 0.0, now, True)
    assert poll.budget(now) > 0
    assert pauses_of_polls_kept_waiting(3)[:1] == [first], "a new crowding: a short pause"


def test_a_pause_ends_with_the_crowding_and_only_a_poll_kept_waiting_starts_one() -> None:
    poll = BusyPoll(CAP, enabled=True)
    now = 1000.0
    for _ in range(5):  # a crowded moment (a client starting up beside its server)
        poll.polled(100e-6, 10e-6, now, True)
    later = _poll._paused_until
    assert later > now and poll.budget(later - 1e-6) == 0.0
    poll.polled(100e-6, 95e-6, later, True)  # the first long poll after it had the CPU
    assert poll.budget(later) > 0, "a poll that had the CPU never pauses polling"
    for _ in range(8):  # frames caught at once: the peer runs beside this process
        poll.polled(5e-6, 0.0, later, True)
    poll.polled(100e-6, 10e-6, later, True)  # one moment's preemption among them
    assert poll.budget(later) > 0, "the crowding is over: one preemption says little"


def test_polls_kept_from_the_interpreter_by_their_own_process_back_off_that_end_alone() -> None:
    busy, alone = BusyPoll(CAP, enabled=True), BusyPoll(CAP, enabled=True)
    now = 1000.0
    for _ in range(5):  # calls in flight on the process's other threads ran while it waited
        busy.polled(100e-6, 10e-6, now, True, others=85e-6)
    assert alone.budget(now) > 0, "the machine is not crowded: the process polls on"
    assert busy.budget(now) == 0.0, "the end that took the lock from its threads backs off"
    assert busy.misses == 5


def test_polls_that_miss_their_frame_back_off_and_one_that_catches_it_ends_that() -> None:
    poll = BusyPoll(CAP, enabled=True)
    now = time.monotonic()

    def blocked_waits_before_the_next_poll() -> int:
        blocked = 0
        while poll.budget(now) == 0.0:
            blocked += 1
        return blocked

    skipped = []
    for _ in range(12):
        poll.polled(100e-6, 100e-6, now, False)
        skipped.append(blocked_waits_before_the_next_poll())
    assert skipped == [min(BusyPoll.MAX_SKIP, 2 ** n) for n in range(1, 13)]
    poll.polled(10e-6, 10e-6, now, True)
    assert poll.budget(now) > 0 and poll.misses == 0
