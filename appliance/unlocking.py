"""The locked daemon's door: a unix socket through which `strongroom unlock` hands over
the passphrase of a master key sealed by one ([keys] master_key_source = passphrase).

While locked, the daemon holds its run lock and this socket and nothing else: no port
is bound, no database opened. The socket is DATA/run/unlock.sock, mode 0600 in a
directory of mode 0700, so only the service user (and root) can reach it; a peer of
another user is refused as well (SO_PEERCRED), in case the modes were loosened.

The exchange is one line each way: the client sends the passphrase and a newline
(at most MAX_REQUEST bytes, within REQUEST_TIMEOUT), the daemon answers
"ok unlocked" or "error <one line>". After a wrong passphrase the daemon waits
THROTTLE before it takes the next connection, so guessing goes at argon2id's pace
plus a second, one guess at a time.
"""
import logging
import os
import socket
import struct
import time
from pathlib import Path

from strongroom.appliance.keysource import KeyUnavailable, PassphraseSource

log = logging.getLogger("strongroom")

SOCKET = Path("run") / "unlock.sock"
MAX_REQUEST = 4096          # bytes: a passphrase and its newline
REQUEST_TIMEOUT = 10.0      # seconds a client gets to send its line
THROTTLE = 1.0              # seconds after a wrong passphrase before the next try
POLL = 0.2                  # seconds between looks at the stop signal
OK = "ok unlocked"


def socket_path(data_dir: Path) -> Path:
    return Path(data_dir) / SOCKET


def wait_unlocked(data_dir: Path, source: PassphraseSource, stopping: list[int]) -> bool:
    """Serve the socket until a right passphrase opens `source` (True) or a signal
    lands in `stopping` (False). The socket is gone when this returns."""
    path = socket_path(data_dir)
    listener = _listen(path)
    log.info("locked: run `strongroom unlock` (the master key is sealed by a passphrase; "
             "nothing is served until then)")
    try:
        while not stopping:
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                if _answer(conn, source):
                    log.info("unlocked: the master key is open")
                    return True
            _pause(THROTTLE, stopping)
        return False
    finally:
        listener.close()
        path.unlink(missing_ok=True)


def _listen(path: Path) -> socket.socket:
    """The listening socket at `path`, replacing one a killed daemon left (we hold the
    run lock, so no live daemon owns it)."""
    try:
        path.parent.mkdir(mode=0o700, exist_ok=True)
        os.chmod(path.parent, 0o700)
        path.unlink(missing_ok=True)
    except OSError as e:     # a directory (or anything we cannot remove) in its place
        raise KeyUnavailable(f"cannot make the unlock socket {path}: {e.strerror}; "
                             "remove what is there") from None
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)           # born 0600: no moment in which others may connect
    try:
        listener.bind(str(path))
    finally:
        os.umask(old)
    os.chmod(path, 0o600)
    listener.listen(8)
    listener.settimeout(POLL)
    return listener


def _answer(conn: socket.socket, source: PassphraseSource) -> bool:
    """Read one passphrase from `conn`, try it, answer; True if it opened the key."""
    try:
        if _peer_uid(conn) not in (os.geteuid(), 0):
            return _reply(conn, "error only the service user or root may unlock", False)
        line = _read_line(conn)
    except (OSError, ValueError) as e:
        return _reply(conn, f"error {e}", False)
    try:
        source.unlock(line)
    except KeyUnavailable as e:
        log.warning("unlock refused: %s", e)
        return _reply(conn, f"error {e}", False)
    return _reply(conn, OK, True)


def _reply(conn: socket.socket, text: str, result: bool) -> bool:
    try:
        conn.sendall(text.encode() + b"\n")
    except OSError:
        pass        # the client went away; its answer does not change ours
    return result


def _read_line(conn: socket.socket) -> str:
    """The first line the peer sends, without its newline; ValueError if it is too
    long, too slow or not UTF-8."""
    deadline = time.monotonic() + REQUEST_TIMEOUT
    data = b""
    while b"\n" not in data:
        left = deadline - time.monotonic()
        if left <= 0:
            raise ValueError(f"no passphrase line within {REQUEST_TIMEOUT:.0f} s")
        conn.settimeout(left)
        try:
            chunk = conn.recv(MAX_REQUEST + 1 - len(data))
        except TimeoutError:
            continue
        if not chunk:
            break
        data += chunk
        if len(data) > MAX_REQUEST:
            raise ValueError(f"a passphrase line longer than {MAX_REQUEST} bytes")
    try:
        return data.split(b"\n", 1)[0].removesuffix(b"\r").decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("the passphrase is not UTF-8 text") from None


def _peer_uid(conn: socket.socket) -> int:
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return int(struct.unpack("3i", creds)[1])


def _pause(seconds: float, stopping: list[int]) -> None:
    deadline = time.monotonic() + seconds
    while not stopping and time.monotonic() < deadline:
        time.sleep(min(POLL, max(0.0, deadline - time.monotonic())))


def send(data_dir: Path, passphrase: str, timeout: float = 120.0) -> str:
    """`strongroom unlock`'s side: the daemon's answer line to `passphrase`
    (OSError if there is no locked daemon to ask)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(timeout)
        conn.connect(str(socket_path(data_dir)))
        conn.sendall(passphrase.encode("utf-8") + b"\n")
        answer = b""
        while b"\n" not in answer and len(answer) < MAX_REQUEST:
            chunk = conn.recv(MAX_REQUEST)
            if not chunk:
                break
            answer += chunk
    return answer.decode("utf-8", "replace").split("\n", 1)[0]
