"""The fast paths under the SFTP subsystem (appliance.sftp.channelio): same bytes
out as in, and reads that stay cheap however much is buffered."""
import os
import random
import threading
import time

import pytest
from paramiko.buffered_pipe import BufferedPipe, PipeTimeout

from appliance.sftp.channelio import ChunkPipe, adopt_channel


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
