"""The clients a benchmark drives, each run with a time limit: curl for WebDAV; OpenSSH
sftp, PuTTY psftp and rclone for SFTP, trusting exactly the servers' host keys and
logging in with one key."""
import os
import subprocess
import time

from .measure import CutOff
from .procs import PASSWORD, USER, proc_io, run
from .servers import Server

CLIENT_TIMEOUT = 600
CURL_TIMEOUT = 900


# -- the client: curl ---------------------------------------------------------------

def curl_base() -> list[str]:
    return ["curl", "-sSk", "--max-time", str(CURL_TIMEOUT), "-u", f"{USER}:{PASSWORD}",
            "-w", "%{http_code} %{size_download} %{size_upload} %{num_connects}\n"]


def check_codes(out: str, ok: tuple, what: str, expect: int) -> list[list[str]]:
    rows = [line.split() for line in out.splitlines() if line.strip()]
    bad = [r for r in rows if r[0] not in ok]
    if bad or len(rows) != expect:
        raise RuntimeError(f"{what}: {len(rows)} responses (expected {expect}), "
                           f"unexpected: {bad[:5]}")
    return rows


def curl(*args, ok=("200", "201", "204"), what="curl", out="/dev/null") -> list[str]:
    p = subprocess.run([*curl_base(), "-o", out, *args], capture_output=True, text=True,
                       timeout=CURL_TIMEOUT + 30)
    if p.returncode:
        raise RuntimeError(f"{what}: curl exit {p.returncode}: {p.stderr.strip()[:300]}")
    return check_codes(p.stdout, ok, what, 1)[0]


def curl_many(commands: list[list[str]], what: str, expect: int) -> int:
    """Run curl processes at once; each must finish with `expect` good responses.
    Returns the number of TCP connections the processes opened."""
    procs = [subprocess.Popen([*curl_base(), *c], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for c in commands]
    errors, connects = [], 0
    for p in procs:
        try:
            out, err = p.communicate(timeout=CURL_TIMEOUT + 30)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
        if p.returncode:
            errors.append(f"curl exit {p.returncode}: {err.strip()[:200]}")
            continue
        try:
            connects += sum(int(r[3]) for r in check_codes(out, ("200", "201", "204"), what,
                                                           expect))
        except RuntimeError as e:
            errors.append(str(e))
    if errors:
        raise RuntimeError(f"{what}: " + "; ".join(errors))
    return connects


# -- the SSH clients ------------------------------------------------------------


class Clients:
    """One client key (`key`, and `ppk` for psftp); psftp and rclone get a private $HOME."""

    def __init__(self, tmp: str, key: str, ppk: str, servers: list[Server], cipher: str = ""):
        self.tmp, self.key, self.ppk, self.cipher = tmp, key, ppk, cipher
        self.known_hosts = os.path.join(tmp, "known_hosts")
        self.fingerprints = {}
        with open(self.known_hosts, "w") as f:
            for srv in servers:  # every host key: some clients prefer RSA
                folder = os.path.dirname(srv.host_key_pub)
                for name in sorted(os.listdir(folder)):
                    if name.endswith(".pub"):
                        with open(os.path.join(folder, name)) as pub:
                            kind, blob = pub.read().split()[:2]
                        f.write(f"[127.0.0.1]:{srv.port} {kind} {blob}\n")
                fp = run("ssh-keygen", "-l", "-E", "sha256", "-f", srv.host_key_pub).stdout
                self.fingerprints[srv.name] = fp.split()[1]
        # psftp and rclone keep state under $HOME: give them a private one
        self.home = os.path.join(tmp, "home")
        os.makedirs(self.home, exist_ok=True)
        self.env = dict(os.environ, HOME=self.home)
        self.rclone_conf = os.path.join(tmp, "rclone.conf")
        open(self.rclone_conf, "w").close()

    # OpenSSH sftp
    def sftp_cmd(self, srv: Server, verbose: bool = False) -> list[str]:
        return ["sftp", "-F", "/dev/null", "-b", "-", "-P", str(srv.port), "-i", self.key,
                *(["-c", self.cipher] if self.cipher else []),
                "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
                "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={self.known_hosts}",
                *(["-v"] if verbose else []), f"{srv.login}@127.0.0.1"]

    def sftp(self, srv: Server, script: str, verbose: bool = False) -> subprocess.CompletedProcess:
        p = subprocess.run(self.sftp_cmd(srv, verbose), input=script, capture_output=True,
                           text=True, timeout=CLIENT_TIMEOUT, env=self.env)
        if p.returncode:
            raise RuntimeError(f"sftp exit {p.returncode}: {p.stderr.strip()[-400:]}")
        return p

    def sftp_many(self, srv: Server, scripts: list[str]) -> None:
        procs = [subprocess.Popen(self.sftp_cmd(srv), stdin=subprocess.PIPE,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                  env=self.env) for _ in scripts]
        errors = []
        deadline = time.monotonic() + CLIENT_TIMEOUT
        for p, script in zip(procs, scripts):
            try:
                _, err = p.communicate(script, timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                _, err = p.communicate()
            if p.returncode:
                errors.append(f"exit {p.returncode}: {err.strip()[-300:]}")
        if errors:
            raise RuntimeError("; ".join(errors))

    # PuTTY psftp
    def psftp(self, srv: Server, script: str, verbose: bool = False,
              timeout: float = CLIENT_TIMEOUT, progress: str = "") -> subprocess.CompletedProcess:
        """Run psftp on a batch script. With `progress` ("rchar" for a put, "wchar" for a
        get) a run that outlives `timeout` is cut off and CutOff carries the bytes the
        client had read from (or written to) its local file by then."""
        path = os.path.join(self.tmp, f"psftp-{srv.name}.txt")
        with open(path, "w") as f:
            f.write(script)
        cmd = ["psftp", "-batch", "-hostkey", self.fingerprints[srv.name], "-P", str(srv.port),
               "-i", self.ppk, "-noagent", "-bc", "-be", "-b", path,
               *(["-v"] if verbose else []), f"{srv.login}@127.0.0.1"]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=self.env, stdin=subprocess.DEVNULL)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            done = proc_io(proc.pid, progress) if progress else 0
            proc.kill()
            proc.communicate()
            raise CutOff(timeout, done) from None
        if proc.returncode:
            raise RuntimeError(f"psftp exit {proc.returncode}: "
                               f"{(err.strip() or out.strip())[-400:]}")
        return subprocess.CompletedProcess(cmd, proc.returncode, out, err)

    # rclone
    def rclone_remote(self, srv: Server, path: str) -> str:
        return (f":sftp,host=127.0.0.1,port={srv.port},user={srv.login},key_file={self.key},"
                f"known_hosts_file={self.known_hosts},shell_type=none,"
                f"disable_hashcheck=true:{path}")

    def rclone(self, *args: str) -> subprocess.CompletedProcess:
        p = subprocess.run(["rclone", "--config", self.rclone_conf, "--retries", "1",
                            "--low-level-retries", "1", *args], capture_output=True, text=True,
                           timeout=CLIENT_TIMEOUT, env=self.env, stdin=subprocess.DEVNULL)
        if p.returncode:
            raise RuntimeError(f"rclone exit {p.returncode}: {p.stderr.strip()[-400:]}")
        return p
