"""paramiko's SFTP subsystem, adjusted where its defaults would lose data or speed.

- Errors from the service layer become SFTP statuses here, once (errors.STATUS).
- CLOSE of an upload reports the commit's real outcome (paramiko always says OK).
- A session that ends without CLOSE aborts its uploads instead of committing them.
- limits@openssh.com is advertised so OpenSSH clients send 255 KiB requests, and
  its limit on open handles is kept: each holds a file or a listing, so a session
  opening without end would run the daemon out of descriptors for everyone.
- Speed: the channel gets a ChunkPipe receive buffer (channelio), packets are
  read ahead and replies batched (framing), and WRITE and READ, the requests
  that come by the thousand, are parsed and answered without paramiko's
  Message. A READ returns at most MAX_IO bytes, whatever the client asks for.
"""
import enum
import logging
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from paramiko import Channel, Message, SFTPHandle, SFTPServer, Transport
from paramiko.sftp import (CMD_CLOSE, CMD_DATA, CMD_EXTENDED, CMD_EXTENDED_REPLY, CMD_INIT,
                           CMD_NAMES, CMD_OPEN, CMD_OPENDIR, CMD_READ, CMD_STATUS, CMD_VERSION,
                           CMD_WRITE, SFTP_BAD_MESSAGE, SFTP_EOF, SFTP_OK, SFTPError)
from paramiko.sftp import _VERSION  # type: ignore[attr-defined]  # private: not in the stubs

from strongroom.appliance.metrics import Metrics
from strongroom.appliance.sftp.channelio import adopt_channel
from strongroom.appliance.sftp.errors import EXPECTED, TooManyHandles, status_for
from strongroom.appliance.sftp.framing import Framing
from strongroom.appliance.sftp.handler import Handle, Handler
from strongroom.appliance.sftp.sshauth import SSHServer

if TYPE_CHECKING:
    class _SFTPServer(SFTPServer):
        """The private methods of paramiko's SFTPServer that Subsystem calls or
        overrides (types-paramiko declares the public ones only)."""

        def _send_status(self, request_number: int, code: int, desc: str | None = None
                         ) -> None: ...

        def _send_packet(self, t: int, packet: Message) -> None: ...

        def _process(self, t: int, request_number: int, msg: Message) -> None: ...
else:
    _SFTPServer = SFTPServer

log = logging.getLogger("strongroom.sftp")

# What parsing a malformed request raises inside paramiko (bad UTF-8, short fields).
MALFORMED = (UnicodeError, struct.error, IndexError, ValueError, OverflowError)
MAX_PACKET = 256 * 1024
MAX_IO = MAX_PACKET - 1024
MAX_HANDLES = 256
BLOCK = 4096
EXTENSIONS = ("posix-rename@openssh.com", "1", "statvfs@openssh.com", "2",
              "limits@openssh.com", "1", "fsync@openssh.com", "1")
# The body of an SSH_FXP_STATUS "OK" reply after its request id: code, message, language.
OK_TAIL = struct.pack(">II", SFTP_OK, 7) + b"Success" + struct.pack(">I", 0)
HEAD = struct.Struct(">II")         # request id, handle length (after the type byte)
AT = struct.Struct(">QI")           # WRITE and READ after the handle: offset, length
STATUS_HEAD = struct.Struct(">IBI")     # packet length, type, request id
DATA_HEAD = struct.Struct(">IBII")      # packet length, type, request id, data length
T = TypeVar("T")


class _Failed(enum.Enum):
    FAILED = "failed"


FAILED = _Failed.FAILED    # a request whose error has already become its status


class Subsystem(Framing, _SFTPServer):
    _metrics: Metrics | None = None     # once started with metrics on
    server: Handler     # paramiko makes it from the sftp_si class server.py gives

    def __init__(self, channel: Channel, *args: Any, **kwargs: Any):
        adopt_channel(channel)  # paramiko builds us on the transport thread: see channelio
        super().__init__(channel, *args, **kwargs)
        self._framing_init(channel)

    def start_subsystem(self, name: str, transport: Transport, channel: Channel) -> None:
        """paramiko's request loop, with WRITE and READ taken on a fast path."""
        self.sock = channel
        connection = transport.server_object   # counts handles over its channels
        assert isinstance(connection, SSHServer)
        self._connection = connection
        self._connection.adopt(self)
        self._metrics = self._connection.app.metrics
        self._send_server_version()
        self.server.session_started()
        while True:
            try:
                packet = self._next_packet()
            except EOFError:
                return
            except Exception as e:   # garbage framing: only this session ends
                log.info("sftp %s: session ended: %s", self._who(), e)
                return
            if self._fast(packet):
                continue
            msg = Message(packet[1:])
            self._process(packet[0] if packet else 0, msg.get_int(), msg)

    def _fast(self, packet: bytes) -> bool:
        """WRITE and READ on an open file, without paramiko's Message. False leaves the
        packet (any other request, a handle that is not open) to _process."""
        kind = packet[0] if packet else 0
        if kind not in (CMD_WRITE, CMD_READ) or len(packet) < 21:
            return False
        request_number, hlen = HEAD.unpack_from(packet, 1)
        start = 9 + hlen + AT.size
        handle = self.file_table.get(packet[9:9 + hlen]) if start <= len(packet) else None
        if handle is None:
            return False
        offset, length = AT.unpack_from(packet, 9 + hlen)
        if kind == CMD_WRITE:
            self._write(request_number, handle, offset, packet, start, length)
        else:
            self._read(request_number, handle, offset, length)
        return True

    def _write(self, request_number: int, handle: SFTPHandle, offset: int, packet: bytes,
               start: int, length: int) -> None:
        end = start + length
        if end > len(packet):
            # paramiko would write the data of a short packet padded with zeros
            log.info("sftp %s: malformed request %s: %d data bytes announced, %d sent",
                     self._who(), CMD_WRITE, length, len(packet) - start)
            self._send_status(request_number, SFTP_BAD_MESSAGE, "malformed request")
            return
        # Bytes after the data are ignored, as paramiko does: rclone (Go's pkg/sftp)
        # sends 32 KiB packets around shorter writes.
        code = self._guarded(CMD_WRITE, request_number, handle.write, offset,
                             memoryview(packet)[start:end])
        if code == SFTP_OK:
            self._write_all(STATUS_HEAD.pack(5 + len(OK_TAIL), CMD_STATUS, request_number)
                            + OK_TAIL)
        elif code is not FAILED:
            self._send_status(request_number, code)

    def _read(self, request_number: int, handle: SFTPHandle, offset: int, length: int
              ) -> None:
        # At most MAX_IO (what limits@openssh.com promises): a client asking for
        # gigabytes at once must not make the daemon hold them in memory.
        data = self._guarded(CMD_READ, request_number, handle.read, offset, min(length, MAX_IO))
        if data is FAILED:
            return
        if isinstance(data, int):
            self._send_status(request_number, data)
        elif not data:
            self._send_status(request_number, SFTP_EOF)
        else:
            self._write_all(DATA_HEAD.pack(9 + len(data), CMD_DATA, request_number, len(data))
                            + data)

    def _send_server_version(self) -> int:
        t, data = self._read_packet()
        if t != CMD_INIT:
            raise SFTPError("Incompatible sftp protocol")
        msg = Message()
        msg.add_int(_VERSION)
        msg.add(*EXTENSIONS)
        self._send_packet(CMD_VERSION, msg)
        version: int = struct.unpack(">I", data[:4])[0]
        return version

    def _process(self, t: int, request_number: int, msg: Message) -> None:
        self._guarded(t, request_number, self._dispatch, t, request_number, msg)

    def _dispatch(self, t: int, request_number: int, msg: Message) -> None:
        if t == CMD_CLOSE:
            self._close(request_number, msg)
        elif t == CMD_EXTENDED:
            self._extended(request_number, msg)
        elif t in (CMD_OPEN, CMD_OPENDIR) and self._connection.handles_open() >= MAX_HANDLES:
            raise TooManyHandles(f"too many open handles (at most {MAX_HANDLES} per "
                                 f"connection)")
        else:
            super()._process(t, request_number, msg)

    def _guarded(self, t: int, request_number: int, fn: Callable[..., T], *args: Any
                 ) -> T | Literal[_Failed.FAILED]:
        """fn(*args), or FAILED after an error has become the request's status.
        Every request passes here once: it is counted here (appliance.metrics)."""
        outcome = "ok"
        try:
            return fn(*args)
        except EXPECTED as e:
            outcome = "refused"
            code, text = status_for(e)
            log.info("sftp %s: request %s refused: %s", self._who(), t, e)
            self._send_status(request_number, code, text)
        except MALFORMED as e:
            outcome = "malformed"
            log.info("sftp %s: malformed request %s: %s", self._who(), t, e)
            self._send_status(request_number, SFTP_BAD_MESSAGE, "malformed request")
        except Exception as e:
            outcome = "error"
            if self._chan.closed or not self._chan.get_transport().is_active():
                log.info("sftp %s: connection closed during request %s", self._who(), t)
                return FAILED
            log.exception("sftp %s: request %s failed: %s", self._who(), t, e)
            self._send_status(request_number, *status_for(None))
        finally:
            if self._metrics is not None:
                self._metrics.request("sftp", CMD_NAMES.get(t, "other"), outcome)
        return FAILED

    def _who(self) -> str:
        session = getattr(self.server, "session", None)
        return f"{session.principal.login}@{session.address}" if session else "?"

    def _close(self, request_number: int, msg: Message) -> None:
        handle = msg.get_binary()
        if handle in self.folder_table:
            del self.folder_table[handle]
        elif handle in self.file_table:
            # Removed first: a failed commit has already aborted the upload.
            self.file_table.pop(handle).close()
        else:
            self._send_status(request_number, SFTP_BAD_MESSAGE, "Invalid handle")
            return
        self._send_status(request_number, SFTP_OK)

    def _extended(self, request_number: int, msg: Message) -> None:
        tag = msg.get_text()
        if tag == "limits@openssh.com":
            reply = Message()
            reply.add_int(request_number)
            for value in (MAX_PACKET, MAX_IO, MAX_IO, MAX_HANDLES):
                reply.add_int64(value)
            self._send_packet(CMD_EXTENDED_REPLY, reply)
        elif tag == "statvfs@openssh.com":
            self._statvfs(request_number, msg.get_text())
        elif tag == "fsync@openssh.com":
            # Data is made durable at commit (on CLOSE); before that nothing is visible.
            if msg.get_binary() not in self.file_table:
                self._send_status(request_number, SFTP_BAD_MESSAGE, "Invalid handle")
                return
            self._send_status(request_number, SFTP_OK)
        else:
            msg.rewind()
            msg.get_int()
            super()._process(CMD_EXTENDED, request_number, msg)

    def _statvfs(self, request_number: int, path: str) -> None:
        """statvfs@openssh.com: the client's quota (or the disk) as a file system."""
        total, free = self.server.session.space(path)
        reply = Message()
        reply.add_int(request_number)
        for value in (BLOCK, BLOCK, total // BLOCK, free // BLOCK, free // BLOCK,
                      0, 0, 0, 0, 0, 255):   # files, ffree, favail, fsid, flag, namemax
            reply.add_int64(value)
        self._send_packet(CMD_EXTENDED_REPLY, reply)

    def finish_subsystem(self) -> None:
        try:
            if self._out:
                self._flush()
        except (OSError, EOFError):
            pass   # the client is gone; nothing is owed to it
        handles = list(self.file_table.values())
        self.file_table = {}
        for h in handles:
            try:
                assert isinstance(h, Handle)   # Handler.open made it
                h.abort()
            except Exception:
                log.exception("sftp %s: abort on disconnect failed", self._who())
        connection = getattr(self, "_connection", None)
        if connection is not None:
            connection.release(self)
        super().finish_subsystem()
