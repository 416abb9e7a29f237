"""The SSH listener: accepts connections and runs one paramiko Transport each.

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
(tests/test_e2e_sftpclients.py). Only modern algorithms: no SHA-1, no CBC.
"""
import logging
import socket
import threading

import paramiko

from appliance.sftp.channelio import ReadAheadSocket
from appliance.sftp.handler import Handler
from appliance.sftp.sshauth import SSHServer
from appliance.sftp.subsystem import Subsystem

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


def load_host_keys(cfg) -> list:
    return [paramiko.Ed25519Key.from_private_key_file(cfg.ssh.host_key_ed25519),
            paramiko.RSAKey.from_private_key_file(cfg.ssh.host_key_rsa)]


class SFTPListener:
    def __init__(self, app, host: str, port: int):
        self.app = app
        self.host_keys = load_host_keys(app.config)
        self.sock = socket.create_server((host, port), reuse_port=False, backlog=128)
        self.port = self.sock.getsockname()[1]
        self._transports: dict = {}      # Transport -> its SSHServer
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        threading.Thread(target=self._watch, name="ssh-watch", daemon=True).start()

    def serve_forever(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, addr = self.sock.accept()
            except OSError:
                break
            threading.Thread(target=self._handle, args=(conn, addr[0]), daemon=True,
                             name=f"ssh-{addr[0]}:{addr[1]}").start()

    def _handle(self, conn, address) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            t = paramiko.Transport(ReadAheadSocket(conn), default_window_size=WINDOW,
                                   default_max_packet_size=MAX_PACKET)
        except Exception:
            conn.close()
            return
        self._configure(t)
        t.set_subsystem_handler("sftp", Subsystem, Handler)
        server = SSHServer(self.app, address)
        with self._lock:
            self._transports[t] = server
        try:
            t.start_server(server=server)
            t.join()
        except (paramiko.SSHException, EOFError, OSError) as e:
            log.info("ssh connection from %s ended: %s", address, e)
        finally:
            with self._lock:
                self._transports.pop(t, None)
            server.uploads.cancel_all()   # the SFTP thread may be inside one of them
            t.close()
            server.closed()

    def _configure(self, t) -> None:
        for key in self.host_keys:
            t.add_server_key(key)
        opts = t.get_security_options()
        opts.ciphers = [c for c in CIPHERS if c in opts.ciphers]
        opts.digests = [m for m in MACS if m in opts.digests]
        opts.kex = [k for k in KEX_ALLOWED if k in opts.kex]
        opts.key_types = [k for k in ("ssh-ed25519", "rsa-sha2-512", "rsa-sha2-256")
                          if k in opts.key_types]

    def _watch(self) -> None:
        """End the connections of users who were disabled (checked every WATCH_SECONDS)."""
        while not self._stopping.wait(WATCH_SECONDS):
            try:
                self._end_disabled()
            except Exception:
                log.exception("checking live SFTP sessions failed")

    def _end_disabled(self) -> None:
        with self._lock:
            live = [(t, srv.session.principal) for t, srv in self._transports.items()
                    if srv.session is not None]
        gone = self.app.auth.disabled_among({p.user_id for _, p in live})
        for t, principal in live:
            if principal.user_id in gone:
                log.info("ending the sftp session of %s: account disabled", principal.login)
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
            transports = list(self._transports)
        for t in transports:
            t.close()
