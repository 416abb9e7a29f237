#!/usr/bin/env python3
"""How long a refused login takes, by kind of account: the timing must not tell an
unknown account from a real one, or one with TOTP from one without.

Starts a real daemon on free loopback ports (throttling set out of the way), then
times refused logins over WebDAV (curl, a PROPFIND with Basic credentials) and SFTP
(paramiko, password auth) for each kind of account and credential, taking the kinds
in turn so that a change of load hits all of them alike, and prints the
median and spread of each and its ratio to an unknown account. Every refusal does
one argon2 verification, so the ratios should all be near 1.0.

    python bench/logins.py [--tries 15]
Needs: curl.
"""
import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import paramiko

from benchlib import free_port, run

PASSWORD = "Timing-secret-0123456789"
# (label, login, credential); a drive session string is made at start for "drives"
CASES = [
    ("unknown account", "ghost", "Wrong-password-42"),
    ("no TOTP, wrong password", "plain", "Wrong-password-42"),
    ("disabled account", "gone", PASSWORD),
    ("TOTP, password without code", "tina", PASSWORD),
    ("TOTP, wrong code", "tina", PASSWORD + "000000"),
    ("TOTP, app-password-like", "tina", "sr-abcde-fghjk-mnpqr-stuvw-xyz23-45678"),
    ("TOTP with 3 drive sessions, wrong", "drives", PASSWORD + "999999"),
]


class Daemon:
    def __init__(self, tmp: str):
        self.data = os.path.join(tmp, "data")
        self.dav, self.sftp = free_port(), free_port()
        self.cli("init", "--webdav-port", str(self.dav), "--sftp-port", str(self.sftp))
        conf = os.path.join(self.data, "strongroom.toml")
        text = open(conf).read()
        for option in ("account_delay_after", "account_block_after", "address_delay_after",
                       "address_block_after"):
            text = re.sub(rf"^(# )?{option} = \d+$", f"{option} = 100000", text, flags=re.M)
        open(conf, "w").write(text)
        self.cli("client", "add", "acme")
        self.secrets = {}
        for login, totp in (("plain", False), ("gone", False), ("tina", True), ("drives", True)):
            out = self.cli("user", "add", login, "--client", "acme", "--password-stdin", "--json",
                           *(() if totp else ("--no-totp",)), input=PASSWORD + "\n")
            self.secrets[login] = json.loads(out).get("totp_secret")
        self.cli("user", "disable", "gone")
        self.cli("user", "app-password", "create", "tina", "--label", "nas")

    def cli(self, *args, input=None) -> str:
        return run("strongroom", *args, "--data-dir", self.data, input=input).stdout

    def start(self):
        self.log = open(os.path.join(self.data, "..", "daemon.log"), "wb")
        self.proc = subprocess.Popen(["strongroom", "serve", "--data-dir", self.data],
                                     stdout=self.log, stderr=self.log)
        deadline = time.time() + 30
        for port in (self.dav, self.sftp):
            while time.time() < deadline:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.2)

    def open_drive_sessions(self) -> None:
        import pyotp
        totp = pyotp.TOTP(self.secrets["drives"])
        for step in (-1, 0, 1):
            status = self.webdav("drives", PASSWORD + totp.at(time.time() + step * 30))[1]
            assert status == 207, f"opening a drive session answered {status}"

    def webdav(self, login, secret) -> tuple[float, int]:
        t = time.perf_counter()
        out = subprocess.run(["curl", "-sk", "-o", "/dev/null", "-w", "%{http_code}", "-X",
                              "PROPFIND", "-H", "Depth: 0", "-u", f"{login}:{secret}",
                              f"https://127.0.0.1:{self.dav}/"], capture_output=True, text=True)
        return time.perf_counter() - t, int(out.stdout or 0)

    def sftp_refusal(self, login, secret) -> float:
        t = paramiko.Transport(("127.0.0.1", self.sftp))
        try:
            t.start_client(timeout=10)
            start = time.perf_counter()
            try:
                t.auth_password(login, secret)
            except paramiko.AuthenticationException:
                pass
            return time.perf_counter() - start
        finally:
            t.close()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(15)


def _row(label, times, baseline) -> str:
    med = statistics.median(times)
    spread = f"{min(times) * 1000:5.0f}-{max(times) * 1000:5.0f}"
    return f"{label:36} {med * 1000:7.1f} ms  ({spread} ms)  {med / baseline:5.2f}x"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tries", type=int, default=15)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        d = Daemon(tmp)
        d.start()
        try:
            d.open_drive_sessions()
            for protocol in ("webdav", "sftp"):
                print(f"\n{protocol}: refused logins, median over {args.tries} "
                      f"(ratio to an unknown account)")
                results = {label: [] for label, _, _ in CASES}
                for _ in range(args.tries):   # round-robin: a load change hits every case
                    for label, login, secret in CASES:
                        results[label].append(d.webdav(login, secret)[0] if protocol == "webdav"
                                              else d.sftp_refusal(login, secret))
                base = statistics.median(results[CASES[0][0]])
                for label, times in results.items():
                    print(_row(label, times, base))
        finally:
            d.stop()


if __name__ == "__main__":
    sys.exit(main())
