#!/usr/bin/env python3
"""SFTP throughput: Strongroom against OpenSSH's sftp-server, the same clients, one run.

Starts a private OpenSSH sshd (`/usr/sbin/sshd -D -e -f CONF`: its own ed25519 host
key, public-key login for the current user with a generated key, `StrictModes no`,
`UsePAM no`, `Subsystem sftp internal-sftp -d DIR` serving a fresh directory; that is
sftp-server's code inside sshd, chosen because the external sftp-server is started
through the user's login shell, whose rc files add processes and time to every
connection) and a
Strongroom daemon (`python -m appliance.cli serve`, encryption at rest and versioning
on, the same public key added with `strongroom user key add`) on free loopback ports,
and prints one table with the ratio Strongroom/OpenSSH and the goal of issue 4:

    OpenSSH sftp put 512 MiB, get 512 MiB             MB/s (1 MB = 10^6 bytes)
    4 concurrent OpenSSH sftp puts of 128 MiB         aggregate MB/s
    PuTTY psftp put and get, --psftp-mib (512) MiB    MB/s (-batch -hostkey SHA256:..,
                                                      key from a puttygen .ppk)
    rclone copy of 500 files of 4 KiB                 files/s (sftp backend,
                                                      disable_hashcheck, shell_type=none)

plus each row's server CPU seconds and peak RSS: Strongroom's daemon (VmHWM, reset
before each row through /proc/PID/clear_refs) and the sum over sshd's per-connection
processes (VmHWM sampled every 0.1 s). Times include the SSH handshake (~0.1 s).
Each row runs --repeat times, alternating which server goes first; the best run
counts (other load only ever slows a run) and the range is shown. Downloads are
checked by SHA-256. A psftp run still going after max(60 s, size / 8 MB/s) is cut off
and scores the rate it had (from the client's /proc/PID/io); psftp 0.78 never sets
TCP_NODELAY, and about one upload in ten against OpenSSH 9.2 decays into 40 ms
round trips. Clients use their default ciphers unless --cipher: OpenSSH's sftp picks
chacha20-poly1305 with sshd but aes128-gcm with Strongroom (which offers only AES-GCM;
psftp: AES-256-CTR with sshd, AES-128-GCM with Strongroom). `--cipher aes128-gcm@openssh.com`
compares OpenSSH's sftp rows with one cipher on both.

    python bench/sftp.py [--repeat 3] [--psftp-mib 512] [--cipher NAME] [--profile DIR]
                         [--sizes] [--patch NAME,..] [--only openssh|strongroom]
                         [--no-table] [--keep]

--profile DIR  after the table, `py-spy record --nonblocking --threads` (raw collapsed
               stacks in DIR/*.txt, which speedscope and inferno read) of Strongroom
               during an OpenSSH sftp put (all threads, then the GIL holder only), a
               psftp put of 128 MiB (same two), the rclone row, and the GIL holder
               during an OpenSSH sftp get and a psftp get, each summarised by
               area (packetizer, SSH cipher and MAC, channel buffer, SFTP parsing,
               handler, at-rest encryption, blob I/O, DB), by thread, by Strongroom
               function (inclusive) and by the hottest source lines.
--sizes        Strongroom's peak RSS during OpenSSH sftp puts and gets of 10 MiB, 1 GiB
               and 4 GiB (sparse source files; VmRSS sampled every 0.1 s, VmHWM reset
               before each), which should stay flat. Adds about 1 minute.
--patch        start Strongroom through bench/sftp_patches.py with candidate fixes
               monkeypatched in (window4m; see that file), to
               measure a fix before making it. The application code is not changed.

Needs: /usr/sbin/sshd (`apt-get install -y openssh-server`, done here when missing
and running as root), sftp and ssh-keygen, psftp and puttygen (putty-tools), rclone,
py-spy for --profile. Only 127.0.0.1 is used, every client run has a time limit.
About 2-3 minutes with the defaults, --profile adds about 40 s. Not a test: nothing
asserts the goals.
"""
import argparse
import collections
import getpass
import hashlib
import linecache
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
USER, PASSWORD = "bench", "Load-test-secret-42"
MIB = 1 << 20
MB = 1e6
BIG, PART, PARTS, SMALL, SMALL_FILES = 512 * MIB, 128 * MIB, 4, 4096, 500
RCLONE_TRANSFERS = 4
CLIENT_TIMEOUT = 600
PSFTP_TIMEOUT, PSFTP_SLOWEST = 60, 8 * MB   # s; bytes/s: cut-off time is the larger
PROFILE_PSFTP = 128 * MIB
SLOW_RUN = 20   # s: a (row, server) whose run took longer is not repeated
SSHD = "/usr/sbin/sshd"
GOALS = {"put": 0.8, "get": 0.8, "put4": 0.8, "psput": 0.5, "psget": 0.8, "small": 0.8}
CLK_TCK = os.sysconf("SC_CLK_TCK")

from benchlib import free_port, proc_io, proc_status, run


# -- small helpers ------------------------------------------------------------------



def wait_port(port: int, timeout: float = 30, proc=None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"server on port {port} exited with status {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.settimeout(2)
                if s.recv(4).startswith(b"SSH-"):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"port {port} did not answer with an SSH banner within {timeout:.0f} s")






def reset_hwm(pid: int) -> bool:
    """Reset the peak RSS (VmHWM) of a process to its current RSS (Linux >= 4.0)."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and of its reaped descendants."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return sum(int(fields[i]) for i in (11, 12, 13, 14)) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return float("nan")


def descendants(root: int) -> list[int]:
    """All live descendants of `root` (one pass over /proc)."""
    parent = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as f:
                    parent[int(name)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    kids = collections.defaultdict(list)
    for pid, ppid in parent.items():
        kids[ppid].append(pid)
    out, todo = [], list(kids[root])
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(kids[pid])
    return out


class CutOff(RuntimeError):
    """A client run that was stopped at its time limit; `done` bytes had moved."""

    def __init__(self, seconds: float, done: int):
        super().__init__(f"cut off after {seconds:.0f} s ({done / MIB:.0f} MiB moved)")
        self.seconds, self.done = seconds, done


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(MIB):
            h.update(block)
    return h.hexdigest()


def make_file(path: str, size: int, seed: bytes) -> str:
    """A deterministic incompressible file; returns its SHA-256."""
    h = hashlib.sha256()
    with open(path, "wb") as f:
        for i in range(size // MIB):
            block = seed[:8] + i.to_bytes(8, "big") + seed[16:]
            f.write(block)
            h.update(block)
    return h.hexdigest()


def fmt_range(values: list[float]) -> str:
    if not values:
        return "-"
    lo, hi = min(values), max(values)
    return f"{lo:.0f}-{hi:.0f}" if len(values) > 1 else ""


# -- the two servers ----------------------------------------------------------------

class Server:
    name = ""
    proc: subprocess.Popen
    port: int
    login: str
    host_key_pub: str          # path of the ed25519 host key's .pub

    def session_pids(self) -> list[int]:
        """Processes whose peak RSS counts for a row."""
        raise NotImplementedError

    def cpu(self) -> float:
        raise NotImplementedError

    def row_started(self) -> None:
        pass

    def row_finished(self) -> None:
        pass

    def stop(self) -> None:
        if getattr(self, "proc", None) is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


class OpenSSH(Server):
    name = "OpenSSH"

    def __init__(self, tmp: str, client_pub: str):
        if not os.path.exists(SSHD):
            install_openssh_server()
        self.root = os.path.join(tmp, "openssh")
        self.files = os.path.join(self.root, "files")
        os.makedirs(self.files)
        if os.geteuid() == 0:
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # privilege separation dir
        self.port = free_port()
        self.login = getpass.getuser()
        key = os.path.join(self.root, "ssh_host_ed25519_key")
        run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "bench-host", "-f", key)
        self.host_key_pub = key + ".pub"
        authorized = os.path.join(self.root, "authorized_keys")
        shutil.copy(client_pub, authorized)
        self.conf = os.path.join(self.root, "sshd_config")
        with open(self.conf, "w") as f:
            f.write(f"""Port {self.port}
ListenAddress 127.0.0.1
HostKey {key}
PidFile {self.root}/sshd.pid
AuthorizedKeysFile {authorized}
AllowUsers {self.login}
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
StrictModes no
UsePAM no
UseDNS no
PrintMotd no
X11Forwarding no
AllowTcpForwarding no
MaxStartups 64
MaxSessions 64
LogLevel INFO
Subsystem sftp internal-sftp -d {self.files}
""")
        self.log_path = os.path.join(self.root, "sshd.log")

    def start(self) -> None:
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", self.conf],
                                     stdout=self._log, stderr=subprocess.STDOUT)
        wait_port(self.port, proc=self.proc)

    def session_pids(self) -> list[int]:
        return descendants(self.proc.pid)

    def cpu(self) -> float:
        return cpu_seconds(self.proc.pid)

    def row_finished(self) -> None:
        """Wait (bounded) until the connections' processes are reaped: then their CPU
        time is in the listener's cumulative children times."""
        deadline = time.monotonic() + 5
        while descendants(self.proc.pid) and time.monotonic() < deadline:
            time.sleep(0.05)

    def rss_label(self) -> str:
        return "sshd per-connection procs"


def install_openssh_server() -> None:
    if os.geteuid() != 0:
        raise SystemExit(f"{SSHD} is missing: apt-get install -y openssh-server")
    print("installing openssh-server (apt-get)", flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], env=env, timeout=300, capture_output=True)
    run("apt-get", "install", "-y", "-qq", "openssh-server", env=env, timeout=600)


class Strongroom(Server):
    name = "Strongroom"

    def __init__(self, tmp: str, client_pub: str, patches: str = ""):
        self.patches = patches
        self.data = os.path.join(tmp, "strongroom")
        self.port = free_port()
        self.login = USER
        self.cli = [sys.executable, "-m", "strongroom.appliance.cli"]
        self.env = dict(os.environ, STRONGROOM_DATA_DIR=self.data)
        self.env["PYTHONPATH"] = REPO + os.pathsep + self.env.get("PYTHONPATH", "")
        self._cli("init", "--webdav-port", str(free_port()), "--sftp-port", str(self.port))
        self._cli("client", "add", "bench")
        self._cli("user", "add", USER, "--client", "bench", "--password-stdin", "--no-totp",
                  "--json", input=PASSWORD + "\n")
        self._cli("user", "key", "add", USER, "--file", client_pub)
        self.host_key_pub = os.path.join(self.data, "ssh", "ssh_host_ed25519_key.pub")
        self.log_path = os.path.join(tmp, "strongroom-serve.log")
        self.hwm_reset = False

    def _cli(self, *args, **kw):
        return run(*self.cli, *args, env=self.env, cwd=REPO, **kw)

    def start(self) -> None:
        self._log = open(self.log_path, "w")
        serve = [sys.executable, os.path.join(REPO, "bench", "sftp_patches.py"), self.patches,
                 "serve"] if self.patches else [*self.cli, "serve"]
        self.proc = subprocess.Popen(serve, env=self.env, cwd=REPO,
                                     stdout=self._log, stderr=subprocess.STDOUT)
        wait_port(self.port, proc=self.proc)

    def session_pids(self) -> list[int]:
        return [self.proc.pid]

    def cpu(self) -> float:
        return cpu_seconds(self.proc.pid)

    def row_started(self) -> None:
        self.hwm_reset = reset_hwm(self.proc.pid)

    def rss_label(self) -> str:
        return "daemon" if self.hwm_reset else "daemon, since start"


class PeakSampler(threading.Thread):
    """Peak VmHWM of each process a server uses during a row (processes come and go)."""

    def __init__(self, srv: Server, interval: float = 0.1):
        super().__init__(daemon=True)
        self.srv, self.interval = srv, interval
        self.peaks: dict[int, float] = {}
        self._stop_event = threading.Event()

    def sample(self) -> None:
        for pid in self.srv.session_pids():
            hwm = proc_status(pid, "VmHWM")
            if hwm == hwm:
                self.peaks[pid] = max(self.peaks.get(pid, 0.0), hwm)

    def run(self):
        while not self._stop_event.wait(self.interval):
            self.sample()

    def stop(self) -> tuple[float, int]:
        self.sample()
        self._stop_event.set()
        self.join(timeout=5)
        return sum(self.peaks.values()), len(self.peaks)


# -- the clients --------------------------------------------------------------------

class Clients:
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


# -- the workload -------------------------------------------------------------------

class Workload:
    def __init__(self, tmp: str, clients: Clients, psftp_size: int):
        self.tmp, self.c = tmp, clients
        seed = os.urandom(MIB)
        self.big = os.path.join(tmp, "big.bin")
        self.big_sha = make_file(self.big, BIG, seed)
        self.part = os.path.join(tmp, "part.bin")
        self.part_sha = make_file(self.part, PART, seed[::-1])
        self.psftp_size = psftp_size
        # A psftp run can degrade for minutes (against OpenSSH now and then; against
        # a server whose per-request cost grows with its backlog): it is cut off and its
        # rate up to then, from the client's I/O counters, is what the run scores.
        self.ps_timeout = max(PSFTP_TIMEOUT, psftp_size / PSFTP_SLOWEST)
        if psftp_size == BIG:
            self.ps_src, self.ps_sha = self.big, self.big_sha
        elif psftp_size == PART:
            self.ps_src, self.ps_sha = self.part, self.part_sha
        else:
            self.ps_src = os.path.join(tmp, "psftp.bin")
            self.ps_sha = make_file(self.ps_src, psftp_size, seed[1:] + seed[:1])
        self.small = os.path.join(tmp, "small")
        os.makedirs(self.small)
        for i in range(SMALL_FILES):
            with open(os.path.join(self.small, f"f{i:04d}.bin"), "wb") as f:
                f.write(os.urandom(SMALL))
        self.verified: dict[str, list[str]] = collections.defaultdict(list)

    def rows(self, psftp_mib: int):
        return (("put", f"sftp put {BIG // MIB} MiB (MB/s)"),
                ("get", f"sftp get {BIG // MIB} MiB (MB/s)"),
                ("put4", f"{PARTS}x sftp put {PART // MIB} MiB concurrent (MB/s)"),
                ("psput", f"psftp put {psftp_mib} MiB (MB/s)"),
                ("psget", f"psftp get {psftp_mib} MiB (MB/s)"),
                ("small", f"rclone {SMALL_FILES} x {SMALL // 1024} KiB put (files/s)"))

    def probe(self, srv: Server) -> str:
        """A first connection with each client (warm-up), and the negotiated algorithms."""
        p = self.c.sftp(srv, "pwd\nls\n", verbose=True)
        m = re.search(r"kex: client->server cipher: (\S+) MAC: (\S+)", p.stderr)
        ssh = f"{m.group(1)}" + ("" if m.group(2) == "<implicit>" else f"+{m.group(2)}") \
            if m else "?"
        p = self.c.psftp(srv, "pwd\n", verbose=True)
        m = re.search(r"Initialised (.+?) (?:client->server|outbound) encryption",
                      p.stderr + p.stdout)
        putty = m.group(1) if m else "?"
        self.c.rclone("lsf", self.c.rclone_remote(srv, ""))
        # what the psftp get row downloads: uploaded here, so that a psftp put that was
        # cut off cannot leave a partial file behind for it
        self.c.sftp(srv, f"put {self.ps_src} ps-get.bin\n")
        return f"OpenSSH sftp: {ssh}; psftp: {putty}"

    def run(self, row: str, srv: Server, rnd: int) -> float:
        """Do one row once; return its figure (MB/s or files/s)."""
        if row == "put":
            t0 = time.perf_counter()
            self.c.sftp(srv, f"put {self.big} big.bin\n")
            return BIG / (time.perf_counter() - t0) / MB
        if row == "get":
            out = os.path.join(self.tmp, f"dl-{srv.name}.bin")
            t0 = time.perf_counter()
            self.c.sftp(srv, f"get big.bin {out}\n")
            figure = BIG / (time.perf_counter() - t0) / MB
            self._verify(srv, "sftp get", out, self.big_sha)
            return figure
        if row == "put4":
            t0 = time.perf_counter()
            self.c.sftp_many(srv, [f"put {self.part} part{i}.bin\n" for i in range(PARTS)])
            return PARTS * PART / (time.perf_counter() - t0) / MB
        if row == "psput":
            t0 = time.perf_counter()
            try:
                self.c.psftp(srv, f"put {self.ps_src} ps.bin\n", timeout=self.ps_timeout,
                             progress="rchar")
            except CutOff as e:
                e.figure = e.done / (time.perf_counter() - t0) / MB
                raise
            return self.psftp_size / (time.perf_counter() - t0) / MB
        if row == "psget":
            out = os.path.join(self.tmp, f"psdl-{srv.name}.bin")
            t0 = time.perf_counter()
            try:
                self.c.psftp(srv, f"get ps-get.bin {out}\n", timeout=self.ps_timeout,
                             progress="wchar")
            except CutOff as e:
                e.figure = e.done / (time.perf_counter() - t0) / MB
                raise
            figure = self.psftp_size / (time.perf_counter() - t0) / MB
            self._verify(srv, "psftp get", out, self.ps_sha)
            return figure
        if row == "small":
            remote = self.c.rclone_remote(srv, f"small-r{rnd}")
            t0 = time.perf_counter()
            self.c.rclone("copy", "--transfers", str(RCLONE_TRANSFERS), self.small, remote)
            figure = SMALL_FILES / (time.perf_counter() - t0)
            listed = self.c.rclone("lsf", remote).stdout.split()
            if len(listed) != SMALL_FILES:
                raise RuntimeError(f"rclone: {len(listed)} files arrived, not {SMALL_FILES}")
            return figure
        raise ValueError(row)

    def _verify(self, srv: Server, what: str, path: str, expected: str) -> None:
        got = sha256_file(path)
        os.unlink(path)
        self.verified[srv.name].append(f"{what} {'ok' if got == expected else 'DIFFERS'}")
        if got != expected:
            raise RuntimeError(f"{what}: the downloaded file differs (SHA-256)")


# -- measuring ----------------------------------------------------------------------

class Result:
    def __init__(self):
        self.figures: list[float] = []
        self.cpu: list[float] = []
        self.failures: list[str] = []
        self.slow = False
        self.rss = 0.0
        self.rss_procs = 0


def measure(servers: list[Server], work: Workload, rows, repeat: int) -> dict:
    results: dict[tuple[str, str], Result] = collections.defaultdict(Result)
    for rnd in range(repeat):
        for row, label in rows:
            for srv in (servers if rnd % 2 == 0 else servers[::-1]):
                res = results[(row, srv.name)]
                if res.slow:
                    continue  # one run of over SLOW_RUN s says enough; keeps the total short
                srv.row_started()
                sampler = PeakSampler(srv)
                sampler.start()
                cpu0, t0, ok = srv.cpu(), time.monotonic(), False
                try:
                    figure = work.run(row, srv, rnd)
                    ok = True
                except CutOff as e:
                    print(f"  {srv.name} {label}: {e}", flush=True)
                    res.failures.append(f"cut off at {e.seconds:.0f} s")
                    figure = getattr(e, "figure", float("nan"))
                except (RuntimeError, subprocess.TimeoutExpired) as e:
                    print(f"  {srv.name} {label}: FAILED: {e}", flush=True)
                    res.failures.append("failed")
                    figure = float("nan")
                # a slow run is not repeated (keeps the total short); a cut-off one is,
                # once (a stall against OpenSSH is a fluke, a slow server is not)
                res.slow = time.monotonic() - t0 > SLOW_RUN and (ok or len(res.failures) > 1)
                srv.row_finished()
                cpu = srv.cpu() - cpu0
                rss, nprocs = sampler.stop()
                if rss > res.rss:
                    res.rss, res.rss_procs = rss, nprocs
                if figure == figure:
                    res.figures.append(figure)
                    res.cpu.append(cpu)
                print(f"  round {rnd + 1} {label:40} {srv.name:10} {figure:8.1f}   "
                      f"server CPU {cpu:5.2f} s, peak RSS {rss:4.0f} MiB"
                      f"{f' ({nprocs} procs)' if nprocs > 1 else ''}", flush=True)
    return results


def print_table(results, servers, rows, repeat) -> None:
    nan = float("nan")
    names = [s.name for s in servers]
    both = len(names) == 2

    def best(row, name):
        figs = results[(row, name)].figures
        return max(figs) if figs else nan

    print(f"\nbest of {repeat} (range of all runs); MB = 10^6 bytes; {os.cpu_count()} CPUs; "
          "CPU = server CPU seconds of the best run; RSS = peak MiB in the row")
    head = f"{'':42}" + "".join(f"{n:>10}{'':10}" for n in names)
    if both:
        head += f"{'SR/OpenSSH':>11}{'goal':>7}"
    head += "".join(f"{'CPU ' + n[:4]:>10}" for n in names) + \
        "".join(f"{'RSS ' + n[:4]:>12}" for n in names)
    print(head)
    for row, label in rows:
        line = f"{label:42}"
        for n in names:
            rng = fmt_range(results[(row, n)].figures)
            line += f"{best(row, n):10.1f} {'(' + rng + ')' if rng else '':9}"
        if both:
            a, b = best(row, "OpenSSH"), best(row, "Strongroom")
            line += f"{b / a if a else nan:10.2f}x{'>=' + str(GOALS[row]):>7}"
        for n in names:
            r = results[(row, n)]
            if r.figures:
                i = r.figures.index(max(r.figures))
                line += f"{r.cpu[i]:9.2f}s"
            else:
                line += f"{'-':>10}"
        for n in names:
            r = results[(row, n)]
            line += f"{r.rss:8.0f}" + (f" ({r.rss_procs})" if r.rss_procs > 1 else "    ")
        notes = [f"{n} {c}x {k}" for n in names
                 for k, c in collections.Counter(results[(row, n)].failures).items()]
        print(line + (f"   [{', '.join(notes)}]" if notes else ""))
    labels = "; ".join(f"RSS {s.name}: {s.rss_label()}" for s in servers)
    print(f"({labels}; (n) = number of processes summed, shared pages counted in each)")


# -- profiling with py-spy ----------------------------------------------------------

# What the innermost frame's own source line does, when that says more than its module
# (C calls such as cipher updates, HMAC, hashing and syscalls have no frame of their own).
LEAF_AREAS = (
    (("paramiko/packet.py",), ("block_engine",), "SSH cipher (paramiko -> cryptography)"),
    (("hmac.py", "paramiko/packet.py", "paramiko/util.py"),
     ("hmac", "HMAC", "compute_hmac", "constant_time", "digest"), "SSH MAC (HMAC per packet)"),
    (("paramiko/packet.py",), ("socket.recv",), "socket recv (transport thread; mostly waiting)"),
    (("paramiko/packet.py",), ("socket.send",), "socket send (replies, window adjusts)"),
    (("paramiko/buffered_pipe.py",), ("",), "paramiko BufferedPipe (channel receive buffer)"),
    (("providers/crypto.py",), ("",), "at-rest AES-GCM (providers/crypto)"),
    (("providers/streams.py",), ("_hash.update",), "at-rest SHA-256 of the plaintext"),
    (("providers/streams.py", "appliance/"), ("os.write", "fsync", "os.rename", "_fsync_dir"),
     "blob file write/fsync"),
)
AREAS = (  # otherwise the innermost frame that matches decides
    ("sqlalchemy", "DB (SQLAlchemy/sqlite)"), ("sqlite3", "DB (SQLAlchemy/sqlite)"),
    ("appliance/db/", "DB (SQLAlchemy/sqlite)"),
    ("providers/", "blob writer/reader (providers, Python)"),
    ("appliance/session/", "service layer (Session, Upload)"),
    ("appliance/sftp/", "SFTP handler/subsystem (appliance/sftp)"),
    ("appliance/", "appliance other"),
    ("auth/", "auth"),
    ("paramiko/packet.py", "paramiko packetizer (Python)"),
    ("paramiko/sftp_server.py", "paramiko SFTP server (parse/dispatch)"),
    ("paramiko/sftp_handle.py", "paramiko SFTP server (parse/dispatch)"),
    ("paramiko/sftp_attr.py", "paramiko SFTP server (parse/dispatch)"),
    ("paramiko/sftp.py", "paramiko SFTP framing (_read_packet/_send_packet)"),
    ("paramiko/message.py", "paramiko Message (parse/build)"),
    ("paramiko/channel.py", "paramiko channel (window, send/recv)"),
    ("paramiko/transport.py", "paramiko transport loop"),
    ("paramiko/", "paramiko other"),
    ("cryptography", "cryptography other"),
    ("logging", "logging"), ("threading.py", "threading"),
)
WAIT_LEAVES = ("Condition.wait (threading.py", "Event.wait (threading.py",
               "EpollSelector.select (selectors.py", "socket.accept (socket.py",
               "Thread._wait_for_tstate_lock", "Queue.get (queue.py")


def source_line(path: str, lineno: int) -> str:
    """py-spy prints paths relative to the profiled process's cwd (REPO) or sys.path."""
    if not lineno:
        return ""
    if not os.path.isabs(path) and os.path.exists(os.path.join(REPO, path)):
        path = os.path.join(REPO, path)
    return linecache.getline(path, lineno)


def area_of(frames: list[str]) -> str:
    func, path, lineno = _frame(frames[-1])
    src = source_line(path, lineno)
    for files, needles, label in LEAF_AREAS:
        if any(f in path for f in files) and any(n in src or n in func for n in needles):
            return label
    for fr in reversed(frames):
        hit = next((label for key, label in AREAS if key in fr), None)
        if hit:
            return hit
    return "other"


class Profiler:
    def __init__(self, out_dir: str, pid: int):
        if shutil.which("py-spy") is None:
            raise SystemExit("py-spy not found: pip install py-spy")
        self.out_dir, self.pid = out_dir, pid
        os.makedirs(out_dir, exist_ok=True)

    def record(self, name: str, fn, gil: bool = False) -> tuple[float, str]:
        raw = os.path.join(self.out_dir, f"{name}{'-gil' if gil else ''}.txt")
        args = ["py-spy", "record", "--pid", str(self.pid), "--rate", "200", "--nonblocking",
                "--threads", "--format", "raw", "-o", raw, *(["--gil"] if gil else [])]
        spy = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        time.sleep(1.0)  # py-spy attaches
        try:
            figure = fn()
        finally:
            spy.send_signal(signal.SIGINT)
            try:
                _, err = spy.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                spy.kill()
                _, err = spy.communicate()
        if not os.path.exists(raw):
            raise RuntimeError(f"py-spy wrote nothing: {err.strip()[:300]}")
        return figure, raw


FRAME = re.compile(r"^(?P<func>.+?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def _frame(fr: str) -> tuple[str, str, int]:
    m = FRAME.match(fr.strip())
    if not m:
        return fr.strip(), "", 0
    return m.group("func"), m.group("file"), int(m.group("line") or 0)


def _short_path(path: str) -> str:
    for marker in ("site-packages/", "lib/python3.", REPO + "/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            if marker == "lib/python3.":
                path = path.split("/", 1)[-1]
    return path


def summarize(raw: str, top: int = 14) -> str:
    areas, funcs, lines, threads, incl = (collections.Counter() for _ in range(5))
    total = idle = 0
    with open(raw) as f:
        for line in f:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not count.isdigit():
                continue
            n = int(count)
            parts = stack.split(";")
            thread = next((p for p in parts if p.startswith("thread ")), "thread ?")
            frames = [p for p in parts if not p.startswith(("process ", "thread "))]
            if not frames:
                continue
            leaf = frames[-1]
            if leaf.startswith(WAIT_LEAVES) or "serve_forever (appliance" in leaf \
                    or "accept (socket.py" in leaf:
                idle += n
                continue
            total += n
            func, path, lineno = _frame(leaf)
            funcs[f"{func} ({_short_path(path)})"] += n
            lines[(path, lineno, func)] += n
            threads[_thread_role(frames, thread)] += n
            areas[area_of(frames)] += n
            for fr in {_frame(f)[:2] for f in frames}:
                if fr[1].startswith(("appliance/", "providers/", "auth/")):
                    incl[f"{fr[0]} ({fr[1]})"] += n
    if not total:
        return "  (no samples)"
    out = [f"  {total} busy samples ({idle} waiting samples dropped)",
           "  by thread: " + ", ".join(f"{k} {v / total:.0%}" for k, v in threads.most_common()),
           "  by area (what the sampled line does, else its innermost known module):"]
    out += [f"    {v / total:6.1%}  {k}" for k, v in areas.most_common()]
    out.append("  self time by function:")
    out += [f"    {v / total:6.1%}  {k}" for k, v in funcs.most_common(top)]
    if incl:
        out.append("  inclusive, Strongroom's own functions:")
        out += [f"    {v / total:6.1%}  {k}" for k, v in incl.most_common(top)]
    out.append("  hottest source lines:")
    for (path, lineno, func), v in lines.most_common(top):
        src = source_line(path, lineno).strip()[:70]
        out.append(f"    {v / total:6.1%}  {_short_path(path)}:{lineno} {func}: {src}")
    return "\n".join(out)


def _thread_role(frames: list[str], thread: str) -> str:
    joined = ";".join(frames)
    if "sftp_server.py" in joined or "appliance/sftp/subsystem" in joined:
        return "SFTP subsystem thread"
    if "transport.py" in joined:
        return "paramiko transport thread"
    if "ChunkedWriter._run" in joined:
        return "blob writer thread"
    if "cheroot" in joined or "wsgidav" in joined:
        return "WebDAV"
    return "other"


def profile(sr: Strongroom, work: Workload, out_dir: str, rows: list[str]) -> None:
    prof = Profiler(out_dir, sr.proc.pid)
    print(f"\nProfiles of Strongroom (py-spy --nonblocking --threads, 200 Hz) in {out_dir}")
    jobs = (("sftp-put", "OpenSSH sftp put 512 MiB", "put", False),
            ("sftp-put", "OpenSSH sftp put 512 MiB, GIL holder only", "put", True),
            ("psftp-put", f"psftp put {PROFILE_PSFTP // MIB} MiB", "psput", False),
            ("psftp-put", f"psftp put {PROFILE_PSFTP // MIB} MiB, GIL holder only", "psput",
             True),
            ("rclone-small", f"rclone {SMALL_FILES} x {SMALL // 1024} KiB", "small", False),
            ("rclone-small", f"rclone {SMALL_FILES} x {SMALL // 1024} KiB, GIL holder only",
             "small", True),
            ("sftp-get", "OpenSSH sftp get 512 MiB, GIL holder only", "get", True),
            ("psftp-get", f"psftp get {work.psftp_size // MIB} MiB, GIL holder only", "psget",
             True))
    small = Workload.__new__(Workload)  # the same workload with a shorter psftp file
    small.__dict__.update(work.__dict__)
    small.psftp_size = min(work.psftp_size, PROFILE_PSFTP)
    if small.psftp_size < work.psftp_size:
        small.ps_src = os.path.join(work.tmp, "psftp-profile.bin")
        with open(work.ps_src, "rb") as src, open(small.ps_src, "wb") as dst:
            dst.write(src.read(small.psftp_size))
    for name, label, row, gil in jobs:
        if row not in rows:
            continue
        try:
            # psftp get downloads the file the probe uploaded: the whole workload's
            w = work if row == "psget" else small
            figure, raw = prof.record(name, lambda row=row, w=w: w.run(row, sr, 90), gil)
        except RuntimeError as e:
            print(f"{label}: FAILED: {e}")
            continue
        unit = "files/s" if row == "small" else "MB/s"
        print(f"\n{label}: {figure:.1f} {unit} under the profiler ({raw})")
        print(summarize(raw))


# -- --sizes: memory against upload size --------------------------------------------

def sizes(sr: Strongroom, clients: Clients, tmp: str) -> None:
    print("\nStrongroom peak RSS against file size (OpenSSH sftp; sparse source files)")
    print(f"  daemon RSS now {proc_status(sr.proc.pid, 'VmRSS'):.0f} MiB, "
          f"VmHWM {proc_status(sr.proc.pid, 'VmHWM'):.0f} MiB")
    for size in (10 * MIB, 1024 * MIB, 4096 * MIB):
        src = os.path.join(tmp, f"sparse-{size // MIB}.bin")
        with open(src, "wb") as f:
            f.write(os.urandom(4096))
            f.truncate(size)
        name = f"size-{size // MIB}.bin"
        for what, script in (("put", f"put {src} {name}\n"), ("get", f"get {name} /dev/null\n")):
            reset_hwm(sr.proc.pid)
            sampler = RssSampler(sr.proc.pid)
            sampler.start()
            t0 = time.perf_counter()
            try:
                clients.sftp(sr, script)
                figure = f"{size / (time.perf_counter() - t0) / MB:8.1f} MB/s"
            except (RuntimeError, subprocess.TimeoutExpired) as e:
                figure = f"FAILED: {str(e)[:200]}"
            peak = sampler.stop()
            print(f"  {what} {size // MIB:5} MiB {figure}   max VmRSS {peak:6.0f} MiB   "
                  f"VmHWM {proc_status(sr.proc.pid, 'VmHWM'):6.0f} MiB", flush=True)
        os.unlink(src)
        try:
            clients.sftp(sr, f"rm {name}\n")
        except RuntimeError:
            pass


class RssSampler(threading.Thread):
    def __init__(self, pid: int, interval: float = 0.1):
        super().__init__(daemon=True)
        self.pid, self.interval, self.max_rss = pid, interval, 0.0
        self._stop_event = threading.Event()

    def sample(self) -> None:
        rss = proc_status(self.pid, "VmRSS")
        if rss == rss:
            self.max_rss = max(self.max_rss, rss)

    def run(self):
        self.sample()
        while not self._stop_event.wait(self.interval):
            self.sample()

    def stop(self) -> float:
        self._stop_event.set()
        self.join(timeout=5)
        self.sample()
        return self.max_rss


# -- main ---------------------------------------------------------------------------

def code_version() -> str:
    """The commit benchmarked, and whether tracked files differ from it (read-only git)."""
    try:
        head = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain",
                                "--untracked-files=no"], capture_output=True, text=True,
                               timeout=10).stdout.split("\n")
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    changed = [line[3:] for line in dirty if line.strip()]
    return f"{head or 'unknown'}" + (f" + uncommitted changes in {', '.join(changed)}"
                                     if changed else "")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3, help="runs per row; the best counts")
    ap.add_argument("--psftp-mib", type=int, default=512,
                    help="size of the psftp transfers (issue 4: 512)")
    ap.add_argument("--profile", metavar="DIR", help="py-spy the sftp and psftp puts into DIR")
    ap.add_argument("--sizes", action="store_true", help="Strongroom RSS for 10 MiB..4 GiB")
    ap.add_argument("--cipher", default="", metavar="NAME",
                    help="OpenSSH sftp -c NAME for both servers (default: the client's "
                         "choice, chacha20-poly1305 with OpenSSH and aes128-gcm with Strongroom)")
    ap.add_argument("--patch", default="", metavar="NAME[,NAME]",
                    help="run Strongroom with experimental fixes from bench/sftp_patches.py "
                         "(pipe, readbuf, window4m, gcm)")
    ap.add_argument("--only", choices=("openssh", "strongroom"))
    ap.add_argument("--rows", default="put,get,put4,psput,psget,small", metavar="ROW[,ROW]",
                    help="rows to run and profile (default: all of put, get, put4, psput, "
                         "psget, small)")
    ap.add_argument("--no-table", action="store_true", help="skip the comparison")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()
    if not 1 <= args.repeat <= 10:
        raise SystemExit("--repeat is 1..10")
    if not 1 <= args.psftp_mib <= 4096:
        raise SystemExit("--psftp-mib is 1..4096")
    for tool in ("sftp", "ssh-keygen", "psftp", "puttygen", "rclone"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found (apt-get install -y openssh-client putty-tools "
                             "rclone)")

    started = time.monotonic()
    print(f"Strongroom code: {code_version()}", flush=True)
    tmp = tempfile.mkdtemp(prefix="sr-sftp-bench-")
    servers: list[Server] = []
    try:
        key = os.path.join(tmp, "client_key")
        run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "bench-client", "-f", key)
        ppk = key + ".ppk"
        run("puttygen", key, "-O", "private", "-o", ppk)
        sr = Strongroom(tmp, key + ".pub", args.patch)
        if args.only != "strongroom" and not args.no_table:
            servers.append(OpenSSH(tmp, key + ".pub"))
        if args.only != "openssh":
            servers.append(sr)
        clients = Clients(tmp, key, ppk, servers, args.cipher)
        need_work = not args.no_table or args.profile
        work = None
        if need_work:
            print(f"preparing {BIG // MIB} MiB, {PART // MIB} MiB"
                  f"{'' if args.psftp_mib * MIB in (BIG, PART) else f', {args.psftp_mib} MiB'}"
                  f" and {SMALL_FILES} small files in {tmp}", flush=True)
            work = Workload(tmp, clients, args.psftp_mib * MIB)
        for srv in servers:
            srv.start()
            algos = work.probe(srv) if work else ""
            patched = f" WITH PATCHES {srv.patches}" if getattr(srv, "patches", "") else ""
            print(f"{srv.name}{patched}: 127.0.0.1:{srv.port} pid {srv.proc.pid}, {algos}; RSS at "
                  f"start {proc_status(srv.proc.pid, 'VmRSS'):.0f} MiB", flush=True)
        if not args.no_table:
            rows = [r for r in work.rows(args.psftp_mib) if r[0] in args.rows.split(",")]
            results = measure(servers, work, rows, args.repeat)
            print_table(results, servers, rows, args.repeat)
            print("downloads checked by SHA-256: " + "; ".join(
                f"{n}: " + ", ".join(f"{k} x{c}" for k, c in sorted(collections.Counter(v).items()))
                for n, v in work.verified.items()))
            print(f"Strongroom daemon VmHWM now {proc_status(sr.proc.pid, 'VmHWM'):.0f} MiB "
                  f"(since the last reset), VmRSS {proc_status(sr.proc.pid, 'VmRSS'):.0f} MiB")
        if args.profile and sr in servers:
            profile(sr, work, args.profile, args.rows.split(","))
        if args.sizes and sr in servers:
            sizes(sr, clients, tmp)
        if os.path.exists(sr.log_path):
            errors = [line for line in open(sr.log_path, errors="replace")
                      if "Traceback" in line or " ERROR " in line]
            if errors:
                print(f"\nStrongroom logged {len(errors)} error line(s); first: "
                      f"{errors[0].strip()[:200]}")
        print(f"\ntotal time {time.monotonic() - started:.0f} s")
    finally:
        for srv in servers:
            srv.stop()
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
