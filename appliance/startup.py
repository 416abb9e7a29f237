"""What `strongroom serve` needs before it serves, each failure as one line.

Files (TLS certificate and key, SSH host keys) are checked by name before they
are loaded, and a port that cannot be bound says which option chose it, so the
admin reads what to fix instead of a traceback.
"""
import errno
import os
import ssl
from typing import TYPE_CHECKING

import paramiko

from strongroom.appliance.errors import Unavailable
from strongroom.appliance.sftp.server import SFTPListener
from strongroom.appliance.webdav.listener import Server
from strongroom.appliance.webdav.server import make_server
from strongroom.config import Config

if TYPE_CHECKING:
    from strongroom.appliance.app import App


def check_files(cfg: Config) -> None:
    for path, option in ((cfg.tls.cert_file, "[tls] cert_file"),
                         (cfg.tls.key_file, "[tls] key_file"),
                         (cfg.ssh.host_key_ed25519, "[ssh] host_key_ed25519"),
                         (cfg.ssh.host_key_rsa, "[ssh] host_key_rsa")):
        try:
            with open(path, "rb"):
                pass
        except OSError as e:
            raise Unavailable(f"cannot read {path} ({option}): {e.strerror}; "
                              "'strongroom init' makes the missing ones") from None


def listeners(app: "App") -> tuple[SFTPListener, Server]:
    """(SFTP listener, WebDAV server), both bound to their ports."""
    cfg = app.config
    check_files(cfg)
    host = cfg.server.host
    try:
        sftp = SFTPListener(app, host, cfg.server.sftp_port)
    except paramiko.SSHException as e:
        raise Unavailable(f"cannot load the SSH host keys ([ssh] host_key_*): {e}") from None
    except OSError as e:
        raise _bind_error(e, host, cfg.server.sftp_port, "sftp_port") from None
    try:
        web = make_server(app, host, cfg.server.webdav_port)
    except ssl.SSLError as e:
        sftp.shutdown()
        raise Unavailable(f"cannot load the TLS certificate {cfg.tls.cert_file} with its key "
                          f"{cfg.tls.key_file}: {e.reason or e}") from None
    try:
        web.prepare()
    except OSError as e:
        sftp.shutdown()
        raise _bind_error(e, host, cfg.server.webdav_port, "webdav_port") from None
    return sftp, web


def _bind_error(e: OSError, host: str, port: int, option: str) -> Unavailable:
    code = getattr(e, "errno", None)
    if code is None and e.args and isinstance(e.args[0], str):
        # cheroot re-raises a failed bind as OSError(message) without errno
        code = next((c for name, c in (("in use", errno.EADDRINUSE),
                                        ("assign requested", errno.EADDRNOTAVAIL),
                                        ("ermission", errno.EACCES)) if name in e.args[0]), None)
    if code == errno.EADDRINUSE:
        return Unavailable(f"port {port} on {host} is already in use by another program "
                           f"([server] {option})")
    if code == errno.EADDRNOTAVAIL:
        return Unavailable(f"{host} is not an address of this machine ([server] host)")
    if code == errno.EACCES:
        return Unavailable(f"port {port} is privileged: use one above 1023 ([server] {option}) "
                           "or give the service CAP_NET_BIND_SERVICE")
    return Unavailable(f"cannot listen on {host} port {port} ([server] {option}): "
                       f"{e.strerror or os.strerror(code or 0) or e}")
