#!/usr/bin/env python3
"""Peak RSS of the daemon while it serves a large upload and download over both protocols.

Starts a real daemon on free loopback ports (bench/harness.py), moves SIZE bytes up and
down with curl (WebDAV over HTTPS, and the web portal's upload form and download) and
OpenSSH sftp, and prints the daemon's peak
resident memory (VmHWM) after each step together with the throughput and the daemon's
CPU-seconds per GB.

    python bench/memory.py [--size-mib 1024]
Needs: curl, sftp, sshpass.
"""
import argparse
import os
import sys
import time

from harness.measure import workspace
from harness.procs import (GB, MB, MIB, PASSWORD, USER, make_file, proc_status, run,
                           sha256_file, wait_port)
from harness.servers import Strongroom
from portal import portal_login

STEP_TIMEOUT = 1800


def steps(sr: Strongroom, src: str, tmp: str) -> list[tuple[str, list[str], str]]:
    """(name, command, its standard input) of each step."""
    base = f"https://127.0.0.1:{sr.webdav_port}"
    url = f"{base}/big.bin"
    session, csrf = portal_login(base)
    web = ["curl", "-sSfk", "-H", f"Cookie: __Host-sr_session={session.cookies.get('__Host-sr_session')}",
           "-H", "Accept: application/json"]
    curl = ["curl", "-sSfk", "-u", f"{USER}:{PASSWORD}"]
    sftp = ["sshpass", "-p", PASSWORD, "sftp", "-oBatchMode=no", "-oStrictHostKeyChecking=no",
            "-oUserKnownHostsFile=/dev/null", "-P", str(sr.sftp_port), "-b", "-",
            f"{USER}@127.0.0.1"]
    return [("webdav PUT (curl)", [*curl, "-T", src, url], ""),
            ("webdav GET (curl)", [*curl, "-o", os.path.join(tmp, "dav.bin"), url], ""),
            ("portal upload (curl -F)", [*web, "-o", "/dev/null", "-F", f"csrf={csrf}", "-F",
                                         f"file=@{src};filename=big3.bin", f"{base}/web/upload?p=/"], ""),
            ("portal download (curl)", [*web, "-o", os.path.join(tmp, "web.bin"),
                                        f"{base}/web/download?p=/big3.bin"], ""),
            ("sftp put (OpenSSH)", sftp, f"put {src} big2.bin\n"),
            ("sftp get (OpenSSH)", sftp, f"get big2.bin {tmp}/sftp.bin\n")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mib", type=int, default=1024)
    args = ap.parse_args()
    if not 1 <= args.size_mib <= 65536:
        raise SystemExit("--size-mib is 1..65536")
    size = args.size_mib * MIB
    with workspace("sr-bench-", keep=False) as (tmp, servers):
        sr = Strongroom(tmp, "webdav")
        src = os.path.join(tmp, "src.bin")
        digest = make_file(src, size, os.urandom(MIB))
        servers.append(sr)
        sr.start()
        wait_port(sr.sftp_port, banner=b"SSH-")
        print(f"file: {args.size_mib} MiB; daemon RSS at start: "
              f"{proc_status(sr.proc.pid, 'VmHWM'):.0f} MiB")
        for name, cmd, script in steps(sr, src, tmp):
            cpu0, t0 = sum(sr.cpu()), time.monotonic()
            run(*cmd, input=script, timeout=STEP_TIMEOUT)
            dt, cpu = time.monotonic() - t0, sum(sr.cpu()) - cpu0
            print(f"{name:22} {size / dt / MB:8.1f} MB/s   server CPU {cpu / (size / GB):5.2f} "
                  f"s/GB   peak RSS so far {proc_status(sr.proc.pid, 'VmHWM'):6.0f} MiB")
        for name in ("dav.bin", "web.bin", "sftp.bin"):
            if sha256_file(os.path.join(tmp, name)) != digest:
                sys.exit(f"{name} differs from what was uploaded")
        peak = proc_status(sr.proc.pid, "VmHWM")
        print(f"downloads verified (sha256). daemon peak RSS: {peak:.0f} MiB "
              f"({'under' if peak < 200 else 'OVER'} the 200 MiB budget)")
        sr.report_errors()


if __name__ == "__main__":
    main()
