"""SocketBody reads a PUT body straight from the connection, with cheroot's own
reader objects around it: bytes cheroot buffered come first, its count of what
is left stays right, and the next request on the connection is untouched."""
import os
import socket
import threading

from cheroot.makefile import StreamReader
from cheroot.server import KnownLengthRFile

from strongroom.appliance.webdav.body import MIN_LENGTH, SocketBody, use_socket_body


def _connection(payload: bytes):
    ours, peer = socket.socketpair()
    sender = threading.Thread(target=lambda: (peer.sendall(payload), peer.close()))
    sender.start()
    return ours, sender


def test_body_is_read_whole_and_the_next_request_is_left_alone():
    body = os.urandom(3 * MIN_LENGTH + 12345)
    nxt = b"GET /next HTTP/1.1\r\n\r\n"
    sock, sender = _connection(b"PUT /f HTTP/1.1\r\n\r\n" + body + nxt)
    stream = StreamReader(sock, "rb", 8192)
    assert stream.readline() == b"PUT /f HTTP/1.1\r\n"
    assert stream.readline() == b"\r\n"   # cheroot has buffered the start of the body
    known = KnownLengthRFile(stream, len(body))
    environ = {"wsgi.input": known}
    use_socket_body(environ)
    reader = environ["wsgi.input"]
    assert isinstance(reader, SocketBody)
    got = bytearray()
    while block := reader.read(100_000):
        assert len(block) <= 100_000
        got += block
    assert bytes(got) == body and known.remaining == 0
    assert reader.read(10) == b""
    assert stream.readline() == b"GET /next HTTP/1.1\r\n"
    sender.join()
    sock.close()


def test_a_body_cut_short_ends_early_and_small_bodies_keep_their_input():
    body = os.urandom(MIN_LENGTH)
    sock, sender = _connection(body[:1000])
    stream = StreamReader(sock, "rb", 8192)
    known = KnownLengthRFile(stream, len(body))
    reader = SocketBody(known, stream, sock)
    assert bytes(reader.read(len(body))) == body[:1000]
    assert known.remaining == len(body) - 1000
    sender.join()
    small = {"wsgi.input": KnownLengthRFile(stream, MIN_LENGTH - 1)}
    use_socket_body(small)
    assert isinstance(small["wsgi.input"], KnownLengthRFile)
    sock.close()


def test_a_read_that_would_block_counts_what_it_took():
    """wsgidav's read_and_discard_input reads a refused request's body with the
    socket non-blocking: the read stops where the data that has arrived ends, and
    cheroot's count of what is left covers exactly the bytes still to come, so
    whoever reads the rest (cheroot, for keep-alive) waits for no byte already taken.
    (Counted only on success, it hung a refused PUT's thread for the 300 s timeout.)"""
    from wsgidav.util import read_and_discard_input
    body, first = os.urandom(4 * MIN_LENGTH), 60_000   # arrived: less than a socket holds
    ours, peer = socket.socketpair()
    peer.sendall(b"PUT /f HTTP/1.1\r\n\r\n" + body[:first])
    stream = StreamReader(ours, "rb", 8192)
    assert stream.readline() == b"PUT /f HTTP/1.1\r\n" and stream.readline() == b"\r\n"
    known = KnownLengthRFile(stream, len(body))
    environ = {"wsgi.input": known, "CONTENT_LENGTH": str(len(body))}
    use_socket_body(environ)
    read_and_discard_input(environ)
    assert known.remaining == len(body) - first
    assert ours.gettimeout() is None          # left as it was
    rest = body[first:]
    sender = threading.Thread(target=lambda: (peer.sendall(rest + b"GET /next"), peer.close()))
    sender.start()
    ours.settimeout(10)
    assert bytes(known.read(known.remaining)) == rest
    assert stream.read(9) == b"GET /next"
    sender.join()
    ours.close()
