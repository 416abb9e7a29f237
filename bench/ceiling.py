"""What the design card's libraries reach with no Strongroom in them: the ceiling
for the small-file rows of bench/sftp.py and bench/webdav.py.

- SFTP: paramiko's SFTP server over a plain directory (no encryption at rest,
  no database, no versions, no audit), with TCP_NODELAY; rclone puts 500 files
  of 4 KiB with 4 transfers, as bench/sftp.py does.
- WebDAV: wsgidav's FilesystemProvider on cheroot with TLS and Basic auth,
  1 MiB block size; 4 keep-alive curl streams PUT 500 files of 4 KiB, as
  bench/webdav.py does.

Each runs --repeat times (bench/measure.py: every run's figure and the server's CPU)
and the summary gives the median, the best and the range.

Run: python bench/ceiling.py [--repeat 3]. Loopback only; every loop is bounded.
"""
import argparse
import logging
import os
import socket
import statistics
import subprocess
import sys
import threading
import time

import paramiko

from harness.measure import NAN, Row, measure, stats, workspace
from harness.procs import free_port, make_small_files, run
from harness.servers import Server

SMALL, FILES, STREAMS = 4096, 500, 4
USER, PASSWORD = "bench", "bench-password-123"
SERVE_LIMIT = 3600  # s: a peer left behind by a killed run stops by itself


# -- a plain paramiko SFTP server ---------------------------------------------------

class _Auth(paramiko.ServerInterface):
    def check_auth_password(self, username, password):
        ok = username == USER and password == PASSWORD
        return paramiko.AUTH_SUCCESSFUL if ok else paramiko.AUTH_FAILED

    def get_allowed_auths(self, username):
        return "password"

    def check_channel_request(self, kind, chanid):
        return paramiko.OPEN_SUCCEEDED if kind == "session" else \
            paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED


class _Handle(paramiko.SFTPHandle):
    def stat(self):
        return paramiko.SFTPAttributes.from_stat(os.fstat(self.readfile.fileno()))

    def chattr(self, attr):
        return paramiko.SFTP_OK


def _plain_fs(root: str):
    """An SFTPServerInterface over `root` (no symlinks, no confinement beyond
    normpath: a benchmark peer on loopback, not a server to expose)."""

    class PlainFS(paramiko.SFTPServerInterface):
        def _real(self, path):
            return os.path.join(root, os.path.normpath("/" + path).lstrip("/"))

        def _status(self, fn, *args):
            try:
                fn(*args)
            except OSError as e:
                return paramiko.SFTPServer.convert_errno(e.errno)
            return paramiko.SFTP_OK

        def canonicalize(self, path):
            return os.path.normpath("/" + path)

        def stat(self, path):
            try:
                return paramiko.SFTPAttributes.from_stat(os.stat(self._real(path)))
            except OSError as e:
                return paramiko.SFTPServer.convert_errno(e.errno)

        lstat = stat

        def list_folder(self, path):
            real = self._real(path)
            try:
                return [paramiko.SFTPAttributes.from_stat(os.stat(os.path.join(real, n)), n)
                        for n in os.listdir(real)]
            except OSError as e:
                return paramiko.SFTPServer.convert_errno(e.errno)

        def open(self, path, flags, attr):
            mode = "r+b" if flags & os.O_RDWR else "wb" if flags & os.O_WRONLY else "rb"
            if flags & os.O_WRONLY and not flags & os.O_TRUNC:
                mode = "ab" if flags & os.O_APPEND else "r+b" if os.path.exists(
                    self._real(path)) else "wb"
            try:
                f = open(self._real(path), mode)
            except OSError as e:
                return paramiko.SFTPServer.convert_errno(e.errno)
            h = _Handle(flags)
            h.readfile = h.writefile = f
            return h

        def mkdir(self, path, attr):
            return self._status(os.mkdir, self._real(path))

        def remove(self, path):
            return self._status(os.remove, self._real(path))

        def rename(self, old, new):
            return self._status(os.rename, self._real(old), self._real(new))

        def chattr(self, path, attr):
            times = getattr(attr, "atime", None), getattr(attr, "mtime", None)
            if None not in times:
                return self._status(os.utime, self._real(path), times)
            return paramiko.SFTP_OK

    return PlainFS


def serve_paramiko(root: str, port: int, host_key: str) -> None:
    logging.getLogger("paramiko").setLevel(logging.CRITICAL)  # ssh-keyscan's probes
    key = paramiko.Ed25519Key.from_private_key_file(host_key)
    fs = _plain_fs(root)
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(64)
    listener.settimeout(1)

    def handshake(conn):
        t = paramiko.Transport(conn)
        t.add_server_key(key)
        t.set_subsystem_handler("sftp", paramiko.SFTPServer, fs)
        try:
            t.start_server(server=_Auth())
        except (paramiko.SSHException, EOFError, OSError):
            t.close()  # a port probe, or ssh-keyscan

    deadline = time.monotonic() + SERVE_LIMIT
    while time.monotonic() < deadline:
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            continue
        conn.settimeout(None)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=handshake, args=(conn,), daemon=True).start()


# -- a plain wsgidav server -----------------------------------------------------------

def serve_wsgidav(root: str, port: int, cert: str, key: str) -> None:
    from cheroot import wsgi
    from cheroot.ssl.builtin import BuiltinSSLAdapter
    from wsgidav.fs_dav_provider import FilesystemProvider
    from wsgidav.wsgidav_app import WsgiDAVApp
    app = WsgiDAVApp({
        "provider_mapping": {"/": FilesystemProvider(root)},
        "simple_dc": {"user_mapping": {"*": {USER: {"password": PASSWORD}}}},
        "http_authenticator": {"accept_basic": True, "accept_digest": False,
                               "default_to_digest": False},
        "block_size": 1024 * 1024, "verbose": 0, "logging": {"enable": False},
        "dir_browser": {"enable": False},
    })
    server = wsgi.Server(("127.0.0.1", port), app, numthreads=10)
    server.ssl_adapter = BuiltinSSLAdapter(cert, key)
    stopper = threading.Timer(SERVE_LIMIT, server.stop)
    stopper.daemon = True
    stopper.start()
    server.start()


# -- measuring --------------------------------------------------------------------

class Plain(Server):
    """This script again, with --serve KIND: one of the plain servers above."""

    def __init__(self, kind: str, name: str, tmp: str, keys: list[str]):
        self.kind, self.name, self.port = kind, name, free_port()
        self.banner = b"SSH-" if kind == "paramiko" else b""
        self.root, self.keys = os.path.join(tmp, kind), keys
        os.makedirs(self.root)

    def command(self) -> list[str]:
        return [sys.executable, os.path.abspath(__file__), "--serve", self.kind,
                "--root", self.root, "--port", str(self.port), "--keys", *self.keys]


def sftp_round(tmp: str, port: int, rnd: int) -> float:
    known = os.path.join(tmp, "known_hosts")
    obscured = run("rclone", "obscure", PASSWORD).stdout.strip()
    remote = (f":sftp,host=127.0.0.1,port={port},user={USER},pass={obscured},"
              f"known_hosts_file={known},shell_type=none,disable_hashcheck=true:small-r{rnd}")
    t0 = time.perf_counter()
    run("rclone", "copy", "--transfers", str(STREAMS), "--retries", "1",
        os.path.join(tmp, "small"), remote, stdin=subprocess.DEVNULL, timeout=600)
    return FILES / (time.perf_counter() - t0)


def webdav_round(tmp: str, port: int, rnd: int) -> float:
    files = sorted(os.listdir(os.path.join(tmp, "small")))
    per = FILES // STREAMS
    configs = []
    for s in range(STREAMS):
        cfg = os.path.join(tmp, f"stream{s}.curlrc")
        with open(cfg, "w") as f:
            for name in files[s * per:(s + 1) * per]:
                f.write(f'upload-file = "{os.path.join(tmp, "small", name)}"\n'
                        f'url = "https://127.0.0.1:{port}/r{rnd}-{name}"\noutput = "/dev/null"\n')
        configs.append(cfg)
    t0 = time.perf_counter()
    procs = [subprocess.Popen(["curl", "-sk", "-u", f"{USER}:{PASSWORD}", "-K", c],
                              stdout=subprocess.DEVNULL) for c in configs]
    for p in procs:
        if p.wait(timeout=600):
            raise RuntimeError("curl failed")
    return FILES / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--serve", choices=("paramiko", "wsgidav"), help=argparse.SUPPRESS)
    ap.add_argument("--root", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--keys", nargs="*", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve == "paramiko":
        return serve_paramiko(args.root, args.port, *args.keys)
    if args.serve == "wsgidav":
        return serve_wsgidav(args.root, args.port, *args.keys)
    if not 1 <= args.repeat <= 10:
        raise SystemExit("--repeat is 1..10")
    with workspace("sr-ceiling-", keep=False) as (tmp, servers):
        make_small_files(os.path.join(tmp, "small"), FILES, SMALL)
        host_key = os.path.join(tmp, "host_key")
        run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", host_key)
        cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
        run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=127.0.0.1", "-keyout", key, "-out", cert)
        summary = []
        for kind, name, keys, round_fn in (
                ("paramiko", "paramiko SFTP, plain directory", [host_key], sftp_round),
                ("wsgidav", "wsgidav+cheroot TLS, plain directory", [cert, key], webdav_round)):
            srv = Plain(kind, name, tmp, keys)
            servers.append(srv)
            srv.start()
            if kind == "paramiko":
                with open(os.path.join(tmp, "known_hosts"), "w") as f:
                    f.write(run("ssh-keyscan", "-p", str(srv.port), "127.0.0.1").stdout)
            row = Row("small", f"{FILES} x 4 KiB (files/s)", 0, files=FILES)
            results = measure([srv], [row], lambda _, s, rnd: round_fn(tmp, s.port, rnd),
                              args.repeat)
            summary.append((name, results[("small", name)]))
            srv.stop()
        print(f"\nbest of {args.repeat}, median and (range of all runs); {os.cpu_count()} CPUs")
        for name, res in summary:
            median, best, rng = stats(res)
            cpu = statistics.median(r.cpu_per_unit(row) for r in res.runs) if res.runs else NAN
            print(f"{name:40} {best:8.0f} files/s, median {median:.0f}{' ' + rng if rng else ''}, "
                  f"server CPU {cpu:.2f} ms/file")


if __name__ == "__main__":
    main()
