"""The SSH listener: accepts connections and runs one paramiko Transport each; limits
the connections not logged in yet, in number and in time (SFTPListener).

Tuned as measured for bulk transfers: TCP_NODELAY (Nagle plus delayed ACK
stalls uploads), a large channel window, 256 KiB maximum packets to match the
limits@openssh.com answer, and the socket reads ahead for paramiko's packet
reader (channelio.ReadAheadSocket).

Ciphers: AES-GCM only. The client's preference order decides, and OpenSSH's
sftp and PuTTY prefer AES-CTR over GCM (chacha20-poly1305 comes first, which
paramiko lacks): offered CTR, they take it, and paramiko then computes an
HMAC per packet in Python on top of the cipher, which doubled the daemon's
CPU per byte (psftp uploads: 9.0 s against 3.7 s for 512 MiB). OpenSSH sftp,
PuTTY psftp (>= 0.76), lftp, sshfs and rclone all speak AES-GCM
(tests/e2e/test_e2e_sftpclients.py). Only modern algorithms: no SHA-1, no CBC.
"""
import logging
import socket
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import paramiko

from strongroom.appliance.connlimits import AcceptBackoff, QuietLog
from strongroom.appliance.service import Session
from strongroom.appliance.sftp.channelio import ReadAheadSocket
from strongroom.appliance.sftp.handler import Handler
from strongroom.appliance.sftp.sshauth import SSHServer
from strongroom.appliance.sftp.subsystem import Subsystem
from strongroom.config import Config

if TYPE_CHECKING:
    from strongroom.appliance.app import App

log = logging.getLogger("strongroom.sftp")

WATCH_SECONDS = 2
WINDOW = 32 * 1024 * 1024
MAX_PACKET = 256 * 1024 + 1024
CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")
# Unused with AES-GCM (it authenticates); kept so that negotiation finds a MAC.
MACS = ("hmac-sha2-256-etm@openssh.com", "hmac-sha2-512-etm@openssh.com",
        "hmac-sha2-256", "hmac-sha2-512")
KEX_ALLOWED = ("mlkem768x25519-sha256", "curve25519-sha256@libssh.org", "ecdh-sha2-nistp256",
               "ecdh-sha2-nistp384", "ecdh-sha2-nistp521", "diffie-hellman-group16-sha512",
               "diffie-hellman-group-exchange-sha256", "diffie-hellman-group14-sha256")


def load_host_keys(cfg: Config) -> list[paramiko.PKey]:
    return [paramiko.Ed25519Key.from_private_key_file(cfg.ssh.host_key_ed25519),
            paramiko.RSAKey.from_private_key_file(cfg.ssh.host_key_rsa)]


@dataclass(eq=False)
class _Connection:
    """One accepted connection: where from, since when, and once it runs, its
    Transport and SSHServer (whose `session` is set by a successful login)."""
    sock: socket.socket
    address: str
    opened: float
    transport: paramiko.Transport | None = None
    server: SSHServer | None = None

    @property
    def session(self) -> Session | None:
        return None if self.server is None else self.server.session

    @property
    def logged_in(self) -> bool:
        return self.session is not None

    def end(self) -> None:
        if self.transport is not None:
            self.transport.close()
            return
        try:    # not running yet: its thread will find the socket dead and clean up
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class SFTPListener:
    """Accepts SSH connections and runs each on its own threads.

    Connections that have not logged in yet are limited like OpenSSH's MaxStartups
    and PerSourceMaxStartups ([ssh] max_startups, max_startups_per_address: further
    ones are closed at once) and LoginGraceTime ([ssh] login_grace_time: closed when
    not logged in by then). A failing accept() pauses the loop, never ends it."""

    def __init__(self, app: "App", host: str, port: int):
        self.app = app
        self.host_keys = load_host_keys(app.config)
        self.sock = socket.create_server((host, port), reuse_port=False, backlog=128)
        self.port: int = self.sock.getsockname()[1]
        ssh = app.config.ssh
        self.grace = ssh.login_grace_time
        self.max_startups, self.per_address = ssh.max_startups, ssh.max_startups_per_address
        self._conns: set[_Connection] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._backoff = AcceptBackoff(log, "sftp")
        self._quiet = QuietLog(log)
        threading.Thread(target=self._watch, name="ssh-watch", daemon=True).start()

    def serve_forever(self) -> None:
        while not self._stopping.is_set():
            try:
                sock, addr = self.sock.accept()
            except OSError as e:
                if self._stopping.is_set():
                    break
                self._backoff.failed(e)
                continue
            self._backoff.succeeded()
            try:
                self._start(sock, addr[0], addr[1])
            except Exception:   # a bug in one connection's start must not end the listener
                log.exception("sftp: starting the connection from %s failed", addr[0])
                sock.close()

    def _start(self, sock: socket.socket, address: str, port: int) -> None:
        conn = self._admit(sock, address)
        if conn is None:
            return
        try:
            threading.Thread(target=self._handle, args=(conn,), daemon=True,
                             name=f"ssh-{address}:{port}").start()
        except RuntimeError as e:    # out of threads: refuse this one, keep accepting
            self._forget(conn)
            sock.close()
            self._quiet.info("thread", "*", "sftp connection from %s refused: %s", address, e)

    def _admit(self, sock: socket.socket, address: str) -> _Connection | None:
        """The connection, registered; or None, `sock` closed, when too many have not
        logged in yet (from this address, or in all)."""
        with self._lock:
            waiting = [c.address for c in self._conns if not c.logged_in]
            here = waiting.count(address)
            if here < self.per_address and len(waiting) < self.max_startups:
                conn = _Connection(sock, address, time.monotonic())
                self._conns.add(conn)
                return conn
        sock.close()
        if here >= self.per_address:
            self._quiet.info("startups", address, "sftp connection from %s refused: %d from "
                             "there not logged in yet (max_startups_per_address)", address, here)
        else:
            self._quiet.info("startups", "*", "sftp connection from %s refused: %d not logged "
                             "in yet (max_startups)", address, len(waiting))
        return None

    def _forget(self, conn: _Connection) -> None:
        with self._lock:
            self._conns.discard(conn)

    def _handle(self, conn: _Connection) -> None:
        try:
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            # a socket by interface (channelio): paramiko only calls socket methods on it
            t = paramiko.Transport(ReadAheadSocket(conn.sock),  # type: ignore[arg-type]
                                   default_window_size=WINDOW,
                                   default_max_packet_size=MAX_PACKET)
        except Exception:   # the peer is gone already
            self._forget(conn)
            conn.sock.close()
            return
        self._configure(t)
        t.set_subsystem_handler("sftp", Subsystem, Handler)
        server = SSHServer(self.app, conn.address)
        server.transport = t
        with self._lock:
            conn.transport, conn.server = t, server
        try:
            t.start_server(server=server)
            t.join()
        except (paramiko.SSHException, EOFError, OSError, RuntimeError) as e:
            log.info("ssh connection from %s ended: %s", conn.address, e)
        finally:
            self._forget(conn)
            server.uploads.cancel_all()   # the SFTP thread may be inside one of them
            t.close()
            server.closed()

    def _configure(self, t: paramiko.Transport) -> None:
        t.local_version = "SSH-2.0-Strongroom"   # not the library and its version
        for key in self.host_keys:
            t.add_server_key(key)
        opts = t.get_security_options()
        opts.ciphers = [c for c in CIPHERS if c in opts.ciphers]
        opts.digests = [m for m in MACS if m in opts.digests]
        opts.kex = [k for k in KEX_ALLOWED if k in opts.kex]
        opts.key_types = [k for k in ("ssh-ed25519", "rsa-sha2-512", "rsa-sha2-256")
                          if k in opts.key_types]

    def _watch(self) -> None:
        """Every WATCH_SECONDS: end the connections not logged in within the grace
        time, and those of users who were disabled."""
        while not self._stopping.wait(WATCH_SECONDS):
            try:
                self._end_late_logins()
                self._end_disabled()
            except Exception:
                log.exception("checking live SFTP sessions failed")

    def _end_late_logins(self) -> None:
        cutoff = time.monotonic() - self.grace
        with self._lock:
            late = [c for c in self._conns if not c.logged_in and c.opened < cutoff]
        for conn in late:
            log.info("closing the ssh connection from %s: not logged in within %g s",
                     conn.address, self.grace)
            conn.end()

    def _end_disabled(self) -> None:
        with self._lock:
            live = [(c.transport, session.principal) for c in self._conns
                    if (session := c.session) is not None and c.transport is not None]
        gone = self.app.auth.ended_among({p.user_id: p.login for _, p in live
                                          if p.user_id is not None})
        for t, principal in live:
            if principal.user_id in gone:
                log.info("ending the sftp session of %s: account disabled, removed or renamed",
                         principal.login)
                t.close()

    def shutdown(self) -> None:
        """Stop accepting, then close every connection (open uploads are aborted)."""
        self._stopping.set()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            conn.end()
