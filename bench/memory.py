#!/usr/bin/env python3
"""Peak RSS of the daemon while it serves a large upload and download over both protocols.

Starts a real daemon on free loopback ports, moves SIZE bytes up and down with
curl (WebDAV over HTTPS) and OpenSSH sftp, and prints the daemon's peak resident
memory (VmHWM) after each step together with the throughput.

    python bench/memory.py [--size-mib 1024]
Needs: curl, sftp, sshpass.
"""
import argparse
import hashlib
import os
import socket
import subprocess
import sys
import tempfile
import time

from benchlib import free_port

PASSWORD = "Load-test-secret-42"




def run(*args, **kw):
    return subprocess.run(args, check=True, capture_output=True, text=True, timeout=1800, **kw)


def vm_hwm_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def wait_port(port: int, deadline: float) -> None:
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"port {port} did not open")


def make_file(path: str, size: int) -> str:
    h = hashlib.sha256()
    block = os.urandom(1 << 20)
    with open(path, "wb") as f:
        for i in range(size >> 20):
            chunk = block[:8] + i.to_bytes(8, "big") + block[16:]
            f.write(chunk)
            h.update(chunk)
    return h.hexdigest()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mib", type=int, default=1024)
    args = ap.parse_args()
    size = args.size_mib << 20
    tmp = tempfile.mkdtemp(prefix="sr-bench-")
    data = os.path.join(tmp, "data")
    wport, sport = free_port(), free_port()
    sr = [sys.executable, "-m", "strongroom.appliance.cli"]
    env = dict(os.environ, STRONGROOM_DATA_DIR=data)
    run(*sr, "init", "--webdav-port", str(wport), "--sftp-port", str(sport), env=env)
    run(*sr, "client", "add", "bench", env=env)
    run(*sr, "user", "add", "bench", "--client", "bench", "--password-stdin", "--no-totp",
        "--json", input=PASSWORD + "\n", env=env)
    src = os.path.join(tmp, "src.bin")
    digest = make_file(src, size)
    log = open(os.path.join(tmp, "serve.log"), "w")
    daemon = subprocess.Popen([*sr, "serve"], env=env, stderr=log)
    try:
        wait_port(wport, time.time() + 30)
        wait_port(sport, time.time() + 30)
        print(f"file: {args.size_mib} MiB; daemon RSS at start: {vm_hwm_mib(daemon.pid):.0f} MiB")
        url = f"https://127.0.0.1:{wport}/big.bin"
        curl = ["curl", "-sSfk", "-u", f"bench:{PASSWORD}"]
        steps = [
            ("webdav PUT (curl)", [*curl, "-T", src, url]),
            ("webdav GET (curl)", [*curl, "-o", os.path.join(tmp, "dav.bin"), url]),
            ("sftp put (OpenSSH)", _sftp(sport, f"put {src} big2.bin")),
            ("sftp get (OpenSSH)", _sftp(sport, f"get big2.bin {tmp}/sftp.bin")),
        ]
        for name, cmd in steps:
            t0 = time.time()
            run(*cmd)
            dt = time.time() - t0
            print(f"{name:22} {size / dt / 1e6:8.1f} MB/s   peak RSS so far "
                  f"{vm_hwm_mib(daemon.pid):6.0f} MiB")
        for name in ("dav.bin", "sftp.bin"):
            assert _sha256(os.path.join(tmp, name)) == digest, f"{name} differs"
        peak = vm_hwm_mib(daemon.pid)
        print(f"downloads verified (sha256). daemon peak RSS: {peak:.0f} MiB "
              f"({'under' if peak < 200 else 'OVER'} the 200 MiB budget)")
    finally:
        daemon.terminate()
        daemon.wait(timeout=30)
        run("rm", "-rf", tmp)


def _sftp(port: int, command: str) -> list:
    return ["sh", "-c", f"echo '{command}' | sshpass -p {PASSWORD} sftp -oBatchMode=no "
            f"-oStrictHostKeyChecking=no -oUserKnownHostsFile=/dev/null -P {port} -b - "
            "bench@127.0.0.1"]


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


if __name__ == "__main__":
    main()
