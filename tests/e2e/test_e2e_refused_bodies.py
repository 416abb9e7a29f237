"""A refused WebDAV PUT answers at once, whatever the size of its body (issue 18).

A PUT of 1 MiB refused for any reason (no write right, onto a folder, no login, an
If-Match that fails, a missing parent folder) is answered within a few seconds, its
connection then either carries the next request or is closed (never left waiting for
body bytes the server has already swallowed), and the next request on a new
connection works. Before the fix about a third of them hung: wsgidav's
read_and_discard_input read the body through SocketBody with the socket non-blocking,
and bytes read before the SSLWantReadError were never counted."""
import base64
import http.client
import socket
import ssl
import time

import pytest

from tests.support.daemon import HOST, running_daemon

MIB = 1024 * 1024
ROUNDS = 4            # of each refusal: 20 refused PUTs in all
ANSWER = 8            # seconds a refusal may take, from the first byte sent to the answer


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    yield from running_daemon(tmp_path_factory, "e2e-refused", setup=_setup)


def _setup(d) -> None:
    d.add_user("reader", client=None, totp=False)
    d.cli("acl", "grant", "/acme", "--user", "reader", "--rights", "read", check=True)
    alice = d.users["alice"]
    for method, path, body in (("MKCOL", "/folder", b""), ("PUT", "/kept.txt", b"kept")):
        status, _ = _once(d, method, path, body, _auth(alice.login, alice.password))
        assert status == 201, f"{method} {path}: {status}"


def _auth(login: str, password: str) -> dict:
    token = base64.b64encode(f"{login}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def _connect(d) -> http.client.HTTPSConnection:
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    return http.client.HTTPSConnection(HOST, d.webdav_port, context=ctx, timeout=30)


def _once(d, method: str, path: str, body: bytes, headers: dict) -> tuple[int, bytes]:
    conn = _connect(d)
    try:
        conn.request(method, path, body=body, headers=headers)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def _refusals(d) -> list[tuple[str, str, dict, int]]:
    """(what, path, headers, status): PUTs refused before a byte of their body counts."""
    alice, reader = d.users["alice"], d.users["reader"]
    return [
        ("no write right", "/acme/refused.bin", _auth(reader.login, reader.password), 403),
        ("onto a folder", "/folder", _auth(alice.login, alice.password), 405),
        ("no login", "/refused.bin", {}, 401),
        ("If-Match fails", "/kept.txt",
         {**_auth(alice.login, alice.password), "If-Match": '"no-such-etag"'}, 412),
        ("no parent", "/missing/refused.bin", _auth(alice.login, alice.password), 409),
    ]


def _refused_put(d, path: str, headers: dict, body: bytes) -> tuple[int, float, str]:
    """(status, seconds to the answer, what became of the connection): 'closed' (the
    server's end of it, within ANSWER seconds of the answer) or 'kept' (and the
    next request on it answered: the body was read to its end)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    sock = ctx.wrap_socket(socket.create_connection((HOST, d.webdav_port), timeout=ANSWER),
                           server_hostname=HOST)
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    request = f"PUT {path} HTTP/1.1\r\nHost: {HOST}\r\n{head}" \
              f"Content-Length: {len(body)}\r\n\r\n".encode()
    start = time.monotonic()
    try:
        sock.sendall(request + body)     # a server that stops reading times this out
        reader = sock.makefile("rb")
        status = int(reader.readline().split()[1])
        length, close = 0, False
        while (line := reader.readline().strip()):
            name, _, value = line.decode().partition(":")
            length = int(value) if name.lower() == "content-length" else length
            close = close or (name.lower() == "connection" and "close" in value.lower())
        reader.read(length)
        seconds = time.monotonic() - start
        if close:
            end = reader.read(1)         # b"" at the server's close; a timeout if never
            return status, seconds, "closed" if end == b"" else f"sent {end!r} after close"
        sock.sendall(f"OPTIONS / HTTP/1.1\r\nHost: {HOST}\r\n{head}\r\n".encode())
        again = reader.readline()
        assert again.startswith(b"HTTP/1.1 200"), f"the next request on it: {again!r}"
        return status, seconds, "kept"
    except (OSError, ValueError, IndexError) as e:
        return 0, time.monotonic() - start, f"{type(e).__name__}: {e}"
    finally:
        sock.close()


def test_refused_puts_of_a_mebibyte_answer_at_once(daemon):
    body = bytes(range(256)) * (MIB // 256)
    alice = daemon.users["alice"]
    seen = []
    for _ in range(ROUNDS):
        for what, path, headers, status in _refusals(daemon):
            got, seconds, after = _refused_put(daemon, path, headers, body)
            seen.append((what, got, round(seconds, 1), after))
            assert got == status and seconds < ANSWER and after in ("closed", "kept"), seen
            # a new connection works at once
            ok, data = _once(daemon, "GET", "/kept.txt", b"",
                             _auth(alice.login, alice.password))
            assert (ok, data) == (200, b"kept"), seen
