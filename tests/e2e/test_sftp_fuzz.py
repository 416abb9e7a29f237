"""Malformed SFTP packets: every one gets an answer (or is ignored), the channel keeps
working, and the daemon survives. Hypothesis generates the packets; bounded in count."""
import socket
import struct

import paramiko
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from tests.support.daemon import HOST

FXP_INIT, FXP_VERSION, FXP_REALPATH, FXP_NAME, FXP_STATUS = 1, 2, 16, 104, 101
FXP_OPEN, FXP_CLOSE, FXP_WRITE, FXP_HANDLE = 3, 4, 6, 102
REQUEST_TYPES = list(range(3, 21)) + [200]   # OPEN .. SYMLINK, EXTENDED


class RawSFTP:
    """An SFTP channel spoken byte by byte, to send what no client library would."""

    def __init__(self, daemon):
        u = daemon.users["alice"]
        self.t = paramiko.Transport((HOST, daemon.sftp_port))
        self.t.connect(username=u.login, password=u.password)
        self.ch = self.t.open_session(timeout=10)
        self.ch.settimeout(10)
        self.ch.invoke_subsystem("sftp")
        self.send(FXP_INIT, struct.pack(">I", 3))
        assert self.recv()[0] == FXP_VERSION

    def send(self, kind: int, body: bytes) -> None:
        self.ch.sendall(struct.pack(">IB", len(body) + 1, kind) + body)

    def recv(self):
        size = struct.unpack(">I", self._exact(4))[0]
        data = self._exact(size)
        return data[0], data[1:]

    def _exact(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            chunk = self.ch.recv(n - len(out))
            if not chunk:
                raise EOFError("channel closed")
            out += chunk
        return out

    def realpath_works(self, req_id: int) -> bool:
        self.send(FXP_REALPATH, struct.pack(">I", req_id) + struct.pack(">I", 1) + b".")
        while True:  # skip answers still owed to the fuzzed request
            kind, body = self.recv()
            if struct.unpack(">I", body[:4])[0] == req_id:
                return kind == FXP_NAME

    def close(self):
        self.t.close()


@pytest.fixture(scope="module")
def raw(daemon):
    conn = RawSFTP(daemon)
    yield conn
    conn.close()


packets = st.tuples(
    st.sampled_from(REQUEST_TYPES),
    st.integers(min_value=1, max_value=2**31 - 1),
    st.one_of(
        st.binary(max_size=64),
        # a length field claiming far more than follows
        st.builds(lambda n, tail: struct.pack(">I", n) + tail,
                  st.integers(min_value=2**20, max_value=2**32 - 1), st.binary(max_size=16)),
        # plausible strings with .., NUL, overlong names
        st.builds(lambda name: struct.pack(">I", len(name)) + name,
                  st.sampled_from([b"../../etc/passwd", b"a\x00b", b"x" * 300, b"\xff\xfe",
                                   b"/../beta/secret", b""]))))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(packet=packets)
def test_fuzzed_packets_leave_the_channel_working(raw, packet):
    kind, req_id, body = packet
    raw.send(kind, struct.pack(">I", req_id) + body)
    assert raw.realpath_works(req_id ^ 0x5A5A5A5A or 1)


def test_garbage_framing_ends_only_that_session(daemon):
    conn = RawSFTP(daemon)
    conn.ch.sendall(b"\xff\xff\xff\xff" + b"junk" * 10)  # an impossible packet length
    with pytest.raises((EOFError, socket.timeout, OSError)):
        conn.recv()
    conn.close()
    fresh = RawSFTP(daemon)
    assert fresh.realpath_works(7)
    fresh.close()


def _status(conn) -> int:
    kind, body = conn.recv()
    assert kind == FXP_STATUS
    return struct.unpack(">I", body[4:8])[0]


def test_a_write_shorter_than_its_length_field_writes_nothing(daemon):
    conn = RawSFTP(daemon)
    name = b"/short-write.bin"
    conn.send(FXP_OPEN, struct.pack(">II", 1, len(name)) + name + struct.pack(">II", 0x1a, 0))
    kind, body = conn.recv()   # flags: WRITE | CREAT | TRUNC, no attributes
    assert kind == FXP_HANDLE
    handle = body[4:]          # the handle as an SSH string
    conn.send(FXP_WRITE, struct.pack(">I", 2) + handle + struct.pack(">QI", 0, 100) + b"x" * 10)
    assert _status(conn) == 5  # SSH_FX_BAD_MESSAGE
    conn.send(FXP_WRITE, struct.pack(">I", 3) + handle + struct.pack(">QI", 0, 4) + b"good")
    assert _status(conn) == 0
    conn.send(FXP_CLOSE, struct.pack(">I", 4) + handle)
    assert _status(conn) == 0
    with paramiko.SFTPClient.from_transport(conn.t) as sftp:
        with sftp.open(name.decode()) as f:
            assert f.read() == b"good"
    conn.close()


def test_hardlink_and_symlink_requests_are_refused(raw):
    for kind, body in ((20, struct.pack(">I", 3) + b"/aa" + struct.pack(">I", 3) + b"/bb"),
                       (200, struct.pack(">I", 20) + b"hardlink@openssh.com"
                        + struct.pack(">I", 3) + b"/aa" + struct.pack(">I", 3) + b"/bb")):
        raw.send(kind, struct.pack(">I", 99) + body)
        answer, payload = raw.recv()
        assert answer == FXP_STATUS
        code = struct.unpack(">I", payload[4:8])[0]
        assert code == 8  # SSH_FX_OP_UNSUPPORTED


def test_fuzzing_left_one_line_per_request_and_no_traceback(daemon):
    log = daemon.log_text()
    assert "Traceback" not in log
    assert "malformed request" in log or "refused" in log
