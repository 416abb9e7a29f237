#!/usr/bin/env python3
"""Run `strongroom` with experimental monkeypatches, to measure a fix before making it.

    python bench/sftp_patches.py PATCH[,PATCH...] serve [--data-dir DIR]

bench/sftp.py uses this for `--patch`. The patches change only this process; the
application code is untouched. Each one is a candidate fix found by profiling:

pipe      paramiko's Channel buffer (BufferedPipe) keeps received data in one
          array.array and reads with `del buf[:n]`, a memmove of everything still
          buffered: with the 32 MiB channel window that is quadratic. This one keeps
          a deque of the received chunks, so a read costs O(bytes read).
readbuf   the SFTP subsystem reads each packet with two channel.recv calls (length,
          then body), each taking the pipe's lock; this one recv()s up to 256 KiB at
          a time into a local buffer and cuts packets out of it.
window4m  a 4 MiB channel window instead of 32 MiB: bounds the memmove above
          without touching paramiko (the cheap stopgap).
gcm       offer only aes128-gcm/aes256-gcm: clients that prefer aes-ctr (OpenSSH's
          sftp, PuTTY) then use AES-GCM, and paramiko skips the separate HMAC.

pipe, readbuf and gcm are now part of appliance/sftp (channelio.ChunkPipe,
framing.Framing, server.CIPHERS), and window4m is superseded by pipe. On the
current code pipe and gcm change nothing, and readbuf must not be used (it
would read the INIT packet with its own buffer and lose what the client sent
after it). They stay to measure commits before 6cec0f6.
"""
import collections
import struct
import sys
import threading
import time

import paramiko.channel
from paramiko.buffered_pipe import PipeTimeout


class FastPipe:
    """paramiko.buffered_pipe.BufferedPipe with a deque of chunks (same interface)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._cv = threading.Condition(self._lock)
        self._event = None
        self._chunks = collections.deque()
        self._offset = 0          # bytes already read from self._chunks[0]
        self._size = 0
        self._closed = False

    def set_event(self, event):
        with self._lock:
            self._event = event
            if self._closed or self._size > 0:
                event.set()
            else:
                event.clear()

    def feed(self, data):
        if isinstance(data, str):
            data = data.encode()
        with self._lock:
            if self._event is not None:
                self._event.set()
            if data:
                self._chunks.append(bytes(data))
                self._size += len(data)
            self._cv.notify_all()

    def read_ready(self):
        with self._lock:
            return self._size > 0

    def _take(self, nbytes):
        out = []
        need = min(nbytes, self._size)
        self._size -= need
        while need:
            chunk = self._chunks[0]
            avail = len(chunk) - self._offset
            if avail <= need:
                out.append(chunk if self._offset == 0 else chunk[self._offset:])
                self._chunks.popleft()
                self._offset = 0
                need -= avail
            else:
                out.append(chunk[self._offset:self._offset + need])
                self._offset += need
                need = 0
        return out[0] if len(out) == 1 else b"".join(out)

    def read(self, nbytes, timeout=None):
        with self._lock:
            if self._size == 0:
                if self._closed:
                    return b""
                if timeout == 0.0:
                    raise PipeTimeout()
                while self._size == 0 and not self._closed:
                    then = time.time()
                    self._cv.wait(timeout)
                    if timeout is not None:
                        timeout -= time.time() - then
                        if timeout <= 0.0:
                            raise PipeTimeout()
                if self._size == 0:
                    return b""
            out = self._take(nbytes)
            if self._size == 0 and self._event is not None and not self._closed:
                self._event.clear()
            return out

    def empty(self):
        with self._lock:
            out = self._take(self._size)
            if self._event is not None and not self._closed:
                self._event.clear()
            return out

    def close(self):
        with self._lock:
            self._closed = True
            self._cv.notify_all()
            if self._event is not None:
                self._event.set()

    def __len__(self):
        with self._lock:
            return self._size


def patch_pipe():
    paramiko.channel.BufferedPipe = FastPipe


READ_AHEAD = 256 * 1024


def patch_readbuf():
    from paramiko.sftp import SFTPError
    from appliance.sftp.subsystem import Subsystem

    def _read_packet(self):
        state = self.__dict__.setdefault("_rstate", [bytearray(), 0])  # buffer, read position
        buf = state[0]
        while len(buf) - state[1] < 4:
            self._fill(state)
        pos = state[1]
        if buf[pos]:
            raise SFTPError("Garbage packet received")
        size = struct.unpack_from(">I", buf, pos)[0]
        while len(buf) - state[1] < 4 + size:
            self._fill(state)
        pos = state[1]
        data = bytes(buf[pos + 4:pos + 4 + size])
        state[1] = pos + 4 + size
        if size == 0:
            return 0, b""
        return data[0], data[1:]

    def _fill(self, state):
        buf, pos = state
        if pos:
            del buf[:pos]   # compact once per recv, not once per packet
            state[1] = 0
        x = self.sock.recv(READ_AHEAD)
        if not x:
            raise EOFError()
        buf += x

    Subsystem._read_packet = _read_packet
    Subsystem._fill = _fill


def patch_window4m():
    import appliance.sftp.server as server
    server.WINDOW = 4 * 1024 * 1024


def patch_gcm():
    import appliance.sftp.server as server
    server.CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")


PATCHES = {"pipe": patch_pipe, "readbuf": patch_readbuf, "window4m": patch_window4m,
           "gcm": patch_gcm}


def main():
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    names = [n for n in sys.argv[1].split(",") if n]
    for name in names:
        if name not in PATCHES:
            raise SystemExit(f"unknown patch {name!r}; known: {', '.join(PATCHES)}")
        PATCHES[name]()
    sys.argv = ["strongroom", *sys.argv[2:]]
    from appliance.cli import main as cli
    cli()


if __name__ == "__main__":
    main()
