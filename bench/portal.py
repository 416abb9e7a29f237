#!/usr/bin/env python3
"""The web portal against WebDAV on the same daemon, one run (issue 12's goals):

    upload 512 MiB     portal multipart POST (curl -F)  vs  WebDAV PUT (curl -T)   >= 0.9x
    download 512 MiB   portal GET /web/download        vs  WebDAV GET             >= 0.9x
    folder of 10,000 files: time to answer its portal page (GET /web/files)     < 1 s

Both transfers use curl over one TLS connection to one Strongroom daemon (encryption
at rest as always); rounds alternate which goes first; the table gives medians,
ranges and the ratio portal/WebDAV. The 10,000 files are uploaded once through the
portal (one multipart form of 10,000 parts, streamed from a generator); the page is
then fetched --repeat times and the median and worst are printed.

    python bench/portal.py [--repeat 3] [--big-mib 512] [--files 10000] [--keep]

Needs curl. Only 127.0.0.1 is used. Not a test: nothing here asserts the goals.
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import time

import requests
import urllib3

from harness.clients import curl
from harness.measure import workspace
from harness.procs import MB, MIB, PASSWORD, USER, make_file, sha256_file
from harness.servers import Strongroom

urllib3.disable_warnings()


def portal_login(base: str) -> tuple[requests.Session, str]:
    """A logged-in portal session (the bench user has no TOTP) and its form token."""
    s = requests.Session()
    s.verify, s.trust_env = False, False
    page = s.get(f"{base}/web/login").text
    token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    r = s.post(f"{base}/web/login", data={"csrf": token, "login": USER, "password": PASSWORD})
    r.raise_for_status()
    page = s.get(f"{base}/web/files").text
    return s, re.search(r'name="csrf" value="([^"]+)"', page).group(1)


def web_curl(*args: str, what: str, out: str = "/dev/null") -> None:
    """curl as a browser would be: the session cookie, no Authorization header (a request
    with one is always WebDAV's)."""
    p = subprocess.run(["curl", "-sSk", "--max-time", "600", "-o", out,
                        "-w", "%{http_code} %{size_download} %{size_upload}",
                        *args], capture_output=True, text=True, timeout=700)
    if p.returncode or p.stdout.split()[0] not in ("200", "303"):
        raise RuntimeError(f"{what}: curl exit {p.returncode}, HTTP {p.stdout.strip()}: "
                           f"{p.stderr.strip()[:300]}")


def timed(fn) -> float:
    start = time.monotonic()
    fn()
    return time.monotonic() - start


def transfers(base: str, cookie: str, csrf: str, src: str, size: int, rnd: int) -> dict:
    """One round: seconds for each of the four transfers."""
    web = ["-H", f"Cookie: __Host-sr_session={cookie}", "-H", "Accept: application/json"]
    put = lambda: curl("-T", src, f"{base}/big-dav.bin", what="WebDAV PUT")  # noqa: E731
    post = lambda: web_curl(*web, "-F", f"csrf={csrf}", "-F", f"file=@{src};filename=big-web.bin",  # noqa: E731
                        f"{base}/web/upload?p=/", what="portal upload")
    get = lambda: curl(f"{base}/big-dav.bin", what="WebDAV GET")  # noqa: E731
    down = lambda: web_curl(*web, f"{base}/web/download?p=/big-web.bin", what="portal download")  # noqa: E731
    out = {}
    pairs = [("dav up", put), ("web up", post)], [("dav down", get), ("web down", down)]
    for pair in pairs:
        for name, fn in (pair if rnd % 2 == 0 else pair[::-1]):
            out[name] = size / timed(fn) / MB
    return out


def many_files(base: str, s: requests.Session, csrf: str, count: int) -> None:
    """`count` files of 16 bytes in /many, through the portal in one streamed form."""
    r = s.post(f"{base}/web/mkdir?p=/", data={"csrf": csrf, "name": "many"})
    r.raise_for_status()
    boundary = "benchboundary7d1c"

    def body():
        yield f"--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n".encode()
        for i in range(count):
            yield (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
                   f"filename=\"file-{i:05d}.txt\"\r\nContent-Type: text/plain\r\n\r\n"
                   f"{i:015d}\n\r\n").encode()
        yield f"--{boundary}--\r\n".encode()
    r = s.post(f"{base}/web/upload?p=/many", data=body(), timeout=3600,
               headers={"Content-Type": f"multipart/form-data; boundary={boundary}",
                        "Accept": "application/json"})
    r.raise_for_status()
    assert len(r.json()["uploaded"]) == count, r.text[:200]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--big-mib", type=int, default=512)
    ap.add_argument("--files", type=int, default=10000)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    size = args.big_mib * MIB
    with workspace("strongroom-bench-portal-", args.keep) as (tmp, servers):
        src = os.path.join(tmp, "big.bin")
        digest = make_file(src, size, os.urandom(MIB))
        srv = Strongroom(tmp, "webdav")
        servers.append(srv)
        srv.start()
        base = f"https://127.0.0.1:{srv.webdav_port}"
        s, csrf = portal_login(base)
        cookie = s.cookies.get("__Host-sr_session")
        rounds = [transfers(base, cookie, csrf, src, size, r) for r in range(args.repeat)]
        got = os.path.join(tmp, "got.bin")
        web_curl("-H", f"Cookie: __Host-sr_session={cookie}", f"{base}/web/download?p=/big-web.bin",
             out=got, what="check download")
        same = sha256_file(got) == digest
        start = time.monotonic()
        many_files(base, s, csrf, args.files)
        filled = time.monotonic() - start
        pages = []
        for _ in range(max(args.repeat, 5)):
            start = time.monotonic()
            r = s.get(f"{base}/web/files?p=/many")
            pages.append(time.monotonic() - start)
            r.raise_for_status()
        assert r.text.count("file-0") >= args.files, "not every file listed"
    print(f"\nportal vs WebDAV, one Strongroom daemon, {args.repeat} rounds, {args.big_mib} MiB "
          f"(MB/s, 1 MB = 10^6 bytes); download verified by SHA-256: {'ok' if same else 'MISMATCH'}")
    for what, dav_key, web_key in (("upload", "dav up", "web up"), ("download", "dav down", "web down")):
        dav = [r[dav_key] for r in rounds]
        web = [r[web_key] for r in rounds]
        print(f"  {what:9} WebDAV {statistics.median(dav):7.1f} ({min(dav):.1f}-{max(dav):.1f})   "
              f"portal {statistics.median(web):7.1f} ({min(web):.1f}-{max(web):.1f})   "
              f"ratio {statistics.median(web) / statistics.median(dav):.2f}x (goal >= 0.9x)")
    print(f"  folder of {args.files} files: page in {statistics.median(pages) * 1000:.0f} ms median, "
          f"{max(pages) * 1000:.0f} ms worst, {len(r.content) / 1e6:.1f} MB of HTML (goal < 1 s); "
          f"uploading them through the portal took {filled:.1f} s")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
