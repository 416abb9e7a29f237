"""The fast paths under the SFTP subsystem (appliance.sftp.channelio, .framing):
same bytes out as in, replies in order and never held back from an idle server,
and reads that stay cheap however much is buffered."""
import os
import random
import socket
import struct
import threading
import time

import pytest
from paramiko.buffered_pipe import BufferedPipe, PipeTimeout

from strongroom.appliance.sftp.channelio import ChunkPipe, ReadAheadSocket, adopt_channel
from strongroom.appliance.sftp.framing import FLUSH_AT, Framing


def test_pipe_returns_the_bytes_fed_in_any_read_sizes():
    pipe, rng = ChunkPipe(), random.Random(4)
    data = os.urandom(300_000)
    pos = 0
    while pos < len(data):
        n = rng.randint(1, 40_000)
        pipe.feed(data[pos:pos + n])
        pos += n
    out = bytearray()
    while len(out) < len(data):
        out += pipe.read(rng.randint(1, 70_000))
    assert out == data and len(pipe) == 0 and not pipe.read_ready()


def test_pipe_timeout_close_and_event_like_paramikos():
    pipe, event = ChunkPipe(), threading.Event()
    pipe.set_event(event)
    assert not event.is_set()
    with pytest.raises(PipeTimeout):
        pipe.read(10, timeout=0.05)
    threading.Timer(0.05, pipe.feed, (b"late",)).start()
    assert pipe.read(10, timeout=5) == b"late"
    assert not event.is_set()
    pipe.feed(b"x")
    assert event.is_set()
    pipe.close()
    assert pipe.read(10) == b"x" and pipe.read(10) == b""


def test_a_large_backlog_is_read_in_linear_time():
    """paramiko's BufferedPipe memmoves the whole backlog on every read: psftp's
    4 KiB writes over a full 32 MiB window took minutes. Here: well under a second."""
    pipe, block = ChunkPipe(), os.urandom(4096)
    for _ in range(8192):                     # 32 MiB
        pipe.feed(block)
    t0 = time.perf_counter()
    for _ in range(8192):
        assert len(pipe.read(4096)) == 4096
    assert time.perf_counter() - t0 < 2.0


def test_adopting_a_channel_keeps_buffered_data_and_event():
    class Channel:
        in_buffer = BufferedPipe()
    ch, event = Channel(), threading.Event()
    ch.in_buffer.set_event(event)
    ch.in_buffer.feed(b"already here")
    adopt_channel(ch)
    assert isinstance(ch.in_buffer, ChunkPipe) and event.is_set()
    assert ch.in_buffer.read(100) == b"already here"
    assert not event.is_set()


def test_read_ahead_socket_serves_small_reads_from_one_recv():
    a, b = socket.socketpair()
    try:
        calls = []

        class Counting:
            send = b.send

            def recv(self, n):
                calls.append(n)
                return b.recv(n)
        data = os.urandom(100_000)
        a.sendall(data)
        time.sleep(0.05)
        sock, out = ReadAheadSocket(Counting()), bytearray()
        while len(out) < len(data):
            out += sock.recv(16 if len(out) % 3 else 4000)
        assert out == data and len(calls) <= 3
    finally:
        a.close()
        b.close()


class FakeChannel:
    """What Framing uses of a paramiko Channel: recv, recv_ready, send (which, like
    paramiko's, sends at most one SSH packet)."""

    out_max_packet_size = 32768 + 64

    def __init__(self, pieces):
        self.pieces, self.packets = list(pieces), []

    def recv(self, n):
        return self.pieces.pop(0) if self.pieces else b""

    def recv_ready(self):
        return bool(self.pieces)

    def send(self, data):
        n = min(len(data), self.out_max_packet_size - 64)
        self.packets.append(bytes(data[:n]))
        return n


class Framed(Framing):
    def __init__(self, channel):
        self.sock = channel
        self._framing_init(channel)


def _packets(n, rng):
    return [bytes([rng.randint(1, 200)]) + os.urandom(rng.randint(0, 9000)) for _ in range(n)]


def test_packets_come_out_whole_however_the_stream_is_cut():
    rng = random.Random(7)
    packets = _packets(200, rng)
    stream = b"".join(struct.pack(">I", len(p)) + p for p in packets)
    cuts = sorted(rng.sample(range(1, len(stream)), 300))
    pieces = [stream[i:j] for i, j in zip([0] + cuts, cuts + [len(stream)])]
    f = Framed(FakeChannel(pieces))
    assert [f._next_packet() for _ in packets] == packets
    with pytest.raises(EOFError):
        f._next_packet()


def test_replies_wait_only_while_requests_are_queued():
    requests = b"".join(struct.pack(">I", 5) + b"\x11abcd" for _ in range(3))
    f = Framed(FakeChannel([requests]))
    replies = []
    for i in range(3):
        f._next_packet()
        reply = b"reply-%d" % i
        replies.append(reply)
        f._write_all(reply)
    # two replies waited for the third request; the third went out with them
    assert f.sock.packets == [b"".join(replies)]
    f._write_all(b"x" * FLUSH_AT)   # nothing queued now: out at once
    assert f.sock.packets[-1] == b"x" * FLUSH_AT


def test_a_large_reply_goes_out_whole_in_packet_sized_pieces():
    f = Framed(FakeChannel([]))
    reply = os.urandom(255 * 1024 + 9)
    f._write_all(reply)
    assert b"".join(f.sock.packets) == reply
    assert max(map(len, f.sock.packets)) == 32768 and len(f.sock.packets) == 8


def test_queued_replies_go_out_before_waiting_for_the_client():
    packet = struct.pack(">I", 5) + b"\x11abcd"
    f = Framed(FakeChannel([packet + packet[:6]]))   # one request and part of the next
    f._next_packet()
    f._write_all(b"first")        # the next request has begun arriving: held back
    assert f.sock.packets == []
    with pytest.raises(EOFError):  # its remaining bytes never come
        f._next_packet()
    assert f.sock.packets == [b"first"]
