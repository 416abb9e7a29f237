"""SFTP packet framing over an SSH channel: reads ahead, batches small replies.

paramiko's BaseSFTP reads every packet with two channel.recv() calls (length,
then body; each takes the channel's locks and counts window) and sends every
reply as its own SSH packet (encrypted, MACed and written on its own). For
clients that send many small requests (psftp writes 4 KiB at a time, with
up to 1 MiB in flight) that per-packet cost is most of the server's work.

`Framing` is a mixin for paramiko's SFTPServer that replaces `_read_packet`
and `_write_all`:
- reads: up to 256 KiB per recv(), packets are cut out of that;
- replies are queued and sent together, in order, when the queue reaches
  FLUSH_AT bytes or when no more requests are waiting to be read (so a
  reply is held back only while the server is busy with the next request
  the client already sent; a client waiting for it is never kept waiting
  on an idle server).
"""
import struct

from paramiko import Channel
from paramiko.sftp import SFTPError

READ_AHEAD = 256 * 1024
FLUSH_AT = 8 * 1024


class Framing:
    def _framing_init(self, channel: Channel) -> None:
        """Frame packets on `channel` (paramiko's SFTPServer gets it as `sock` only
        when the subsystem starts)."""
        self._chan = channel
        self._rbuf, self._rpos = b"", 0
        self._out: list[bytes] = []
        self._out_size = 0

    def _next_packet(self) -> bytes:
        """The next packet's type byte and body, as one bytes object."""
        size = struct.unpack(">I", self._take(4))[0]
        if size >> 24:
            # no SFTP packet is that large (paramiko refuses them alike)
            raise SFTPError("Garbage packet received")
        return self._take(size)

    def _read_packet(self) -> tuple[int, bytes]:
        packet = self._next_packet()
        return (packet[0], packet[1:]) if packet else (0, b"")

    def _take(self, n: int) -> bytes:
        buf, pos = self._rbuf, self._rpos
        if len(buf) - pos >= n:
            self._rpos = pos + n
            return buf if pos == 0 and n == len(buf) else buf[pos:pos + n]
        parts = [buf[pos:]] if pos < len(buf) else []
        have = len(buf) - pos
        while True:
            x = self._recv()
            need = n - have
            if len(x) >= need:
                parts.append(x[:need] if len(x) > need else x)
                self._rbuf, self._rpos = x, need
                return parts[0] if len(parts) == 1 else b"".join(parts)
            parts.append(x)
            have += len(x)

    def _recv(self) -> bytes:
        if self._out and not self._chan.recv_ready():
            self._flush()  # about to wait for the client: it gets its replies first
        x = self._chan.recv(READ_AHEAD)
        if not x:
            raise EOFError()
        return x

    def _write_all(self, out: bytes) -> None:
        self._out.append(out)
        self._out_size += len(out)
        if self._out_size >= FLUSH_AT or not self._more_waiting():
            self._flush()

    def _more_waiting(self) -> bool:
        return len(self._rbuf) > self._rpos or self._chan.recv_ready()

    def _flush(self) -> None:
        out = self._out[0] if len(self._out) == 1 else b"".join(self._out)
        self._out, self._out_size = [], 0
        # One SSH packet's worth per send(): Channel.sendall would copy all that is
        # left after every packet, and a memoryview costs paramiko two exceptions
        # per packet (util.asbytes). Slicing bytes copies each piece once; a piece
        # that is the whole reply is not copied at all.
        piece = max(1024, self._chan.out_max_packet_size - 64)
        pos = 0
        while pos < len(out):
            sent = self._chan.send(out[pos:pos + piece])
            if sent <= 0:
                raise EOFError()
            pos += sent
