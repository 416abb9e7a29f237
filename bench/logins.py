#!/usr/bin/env python3
"""How long a refused login takes, by kind of account: the timing must not tell an
unknown account from a real one, or one with TOTP from one without.

Starts a real daemon on free loopback ports (bench/harness.py; throttling set out of
the way), then times refused logins over WebDAV (curl, a PROPFIND with Basic
credentials) and SFTP (paramiko, password auth) for each kind of account and
credential, taking the kinds in turn so that a change of load hits all of them alike,
and prints the median and spread of each and its ratio to an unknown account. Every
refusal does one argon2 verification, so the ratios should all be near 1.0.

    python bench/logins.py [--tries 15]
Needs: curl.
"""
import argparse
import json
import statistics
import subprocess
import sys
import time

import paramiko

from harness.measure import workspace
from harness.procs import wait_port
from harness.servers import Strongroom

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


THROTTLE = ("account_delay_after", "account_block_after", "address_delay_after",
            "address_block_after")


class Daemon(Strongroom):
    """A daemon with throttling out of the way and one account of each kind (client acme)."""

    def __init__(self, tmp: str):
        super().__init__(tmp, "webdav", [f"auth.{option}=100000" for option in THROTTLE])
        self.dav, self.sftp = self.webdav_port, self.sftp_port
        self.admin("client", "add", "acme")
        self.secrets = {}
        for login, totp in (("plain", False), ("gone", False), ("tina", True), ("drives", True)):
            out = self.admin("user", "add", login, "--client", "acme", "--password-stdin",
                             "--json", *(() if totp else ("--no-totp",)),
                             input=PASSWORD + "\n").stdout
            self.secrets[login] = json.loads(out).get("totp_secret")
        self.admin("user", "disable", "gone")
        self.admin("user", "app-password", "create", "tina", "--label", "nas")

    def start(self):
        super().start()
        wait_port(self.sftp, banner=b"SSH-")

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
                              f"https://127.0.0.1:{self.dav}/"], capture_output=True, text=True,
                             timeout=60)
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


def _row(label, times, baseline) -> str:
    med = statistics.median(times)
    spread = f"{min(times) * 1000:5.0f}-{max(times) * 1000:5.0f}"
    return f"{label:36} {med * 1000:7.1f} ms  ({spread} ms)  {med / baseline:5.2f}x"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tries", type=int, default=15)
    args = ap.parse_args()
    if not 1 <= args.tries <= 1000:
        raise SystemExit("--tries is 1..1000")
    with workspace("sr-logins-", keep=False) as (tmp, servers):
        d = Daemon(tmp)
        servers.append(d)
        d.start()
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


if __name__ == "__main__":
    sys.exit(main())
