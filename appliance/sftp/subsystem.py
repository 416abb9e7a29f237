"""paramiko's SFTP subsystem, adjusted where its defaults would lose data or speed.

- Errors from the service layer become SFTP statuses here, once (errors.STATUS).
- CLOSE of an upload reports the commit's real outcome (paramiko always says OK).
- A session that ends without CLOSE aborts its uploads instead of committing them.
- limits@openssh.com is advertised so OpenSSH clients send 255 KiB requests.
- The channel gets a ChunkPipe receive buffer (channelio): paramiko's own
  slows down with the backlog.
"""
import logging
import struct

from paramiko import Message, SFTPServer
from paramiko.sftp import (CMD_CLOSE, CMD_EXTENDED, CMD_EXTENDED_REPLY, CMD_INIT, CMD_VERSION,
                           SFTP_BAD_MESSAGE, SFTP_OK, SFTPError, _VERSION)

from appliance.sftp.channelio import adopt_channel
from appliance.sftp.errors import EXPECTED, status_for

log = logging.getLogger("strongroom.sftp")

# What parsing a malformed request raises inside paramiko (bad UTF-8, short fields).
MALFORMED = (UnicodeError, struct.error, IndexError, ValueError, OverflowError)
MAX_PACKET = 256 * 1024
MAX_IO = MAX_PACKET - 1024
MAX_HANDLES = 256
BLOCK = 4096
EXTENSIONS = ("posix-rename@openssh.com", "1", "statvfs@openssh.com", "2",
              "limits@openssh.com", "1", "fsync@openssh.com", "1")


class Subsystem(SFTPServer):
    def __init__(self, channel, *args, **kwargs):
        adopt_channel(channel)  # paramiko builds us on the transport thread: see channelio
        super().__init__(channel, *args, **kwargs)

    def _send_server_version(self):
        t, data = self._read_packet()
        if t != CMD_INIT:
            raise SFTPError("Incompatible sftp protocol")
        msg = Message()
        msg.add_int(_VERSION)
        msg.add(*EXTENSIONS)
        self._send_packet(CMD_VERSION, msg)
        return struct.unpack(">I", data[:4])[0]

    def _process(self, t, request_number, msg):
        try:
            if t == CMD_CLOSE:
                self._close(request_number, msg)
            elif t == CMD_EXTENDED:
                self._extended(request_number, msg)
            else:
                super()._process(t, request_number, msg)
        except EXPECTED as e:
            code, text = status_for(e)
            log.info("sftp %s: request %s refused: %s", self._who(), t, e)
            self._send_status(request_number, code, text)
        except MALFORMED as e:
            log.info("sftp %s: malformed request %s: %s", self._who(), t, e)
            self._send_status(request_number, SFTP_BAD_MESSAGE, "malformed request")
        except Exception as e:
            if self.sock.closed or not self.sock.get_transport().is_active():
                log.info("sftp %s: connection closed during request %s", self._who(), t)
                return
            log.exception("sftp %s: request %s failed: %s", self._who(), t, e)
            self._send_status(request_number, *status_for(None))

    def _who(self) -> str:
        session = getattr(self.server, "session", None)
        return f"{session.principal.login}@{session.address}" if session else "?"

    def _close(self, request_number, msg):
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

    def _extended(self, request_number, msg):
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

    def _statvfs(self, request_number, path):
        """statvfs@openssh.com: the client's quota (or the disk) as a file system."""
        total, free = self.server.session.space(path)
        reply = Message()
        reply.add_int(request_number)
        for value in (BLOCK, BLOCK, total // BLOCK, free // BLOCK, free // BLOCK,
                      0, 0, 0, 0, 0, 255):   # files, ffree, favail, fsid, flag, namemax
            reply.add_int64(value)
        self._send_packet(CMD_EXTENDED_REPLY, reply)

    def finish_subsystem(self):
        handles = list(self.file_table.values())
        self.file_table = {}
        for h in handles:
            try:
                h.abort()
            except Exception:
                log.exception("sftp %s: abort on disconnect failed", self._who())
        super().finish_subsystem()
