#!/usr/bin/env python3
"""SFTP throughput: Strongroom against OpenSSH's sftp-server, the same clients, one run.

Starts a private OpenSSH sshd (`/usr/sbin/sshd -D -e -f CONF`: its own ed25519 host
key, public-key login for the current user with a generated key, `StrictModes no`,
`UsePAM no`, `Subsystem sftp internal-sftp -d DIR` serving a fresh directory; that is
sftp-server's code inside sshd, chosen because the external sftp-server is started
through the user's login shell, whose rc files add processes and time to every
connection) and a Strongroom daemon (`python -m strongroom.appliance.cli serve`,
encryption at rest and versioning on, the same public key added with `strongroom user
key add`) on free loopback ports, and prints one table against the goals of issue 4:

    OpenSSH sftp put 512 MiB, get 512 MiB             MB/s (1 MB = 10^6 bytes)
    4 concurrent OpenSSH sftp puts of 128 MiB         aggregate MB/s
    PuTTY psftp put and get, --psftp-mib (512) MiB    MB/s (-batch -hostkey SHA256:..,
                                                      key from a puttygen .ppk)
    rclone copy of 500 files of 4 KiB                 files/s (sftp backend,
                                                      disable_hashcheck, shell_type=none)

with, for each server, the median, best and range of --repeat runs (rounds alternate
which server goes first), the ratio Strongroom/OpenSSH of the medians and of the
bests, each side's server CPU-seconds per GB (ms per file for rclone), the row's peak
RSS (Strongroom's daemon: VmHWM, reset before each row through /proc/PID/clear_refs;
OpenSSH: the sum over sshd's per-connection processes, sampled every 0.1 s) and every
run's figure (see bench/measure.py). Times include the SSH handshake (~0.1 s). A run
that took over 20 s is not repeated. Downloads are checked by SHA-256. A psftp run
still going after max(60 s, size / 8 MB/s) is cut off and scores the rate it had (from
the client's /proc/PID/io); psftp 0.78 never sets TCP_NODELAY, and about one upload in
ten against OpenSSH 9.2 decays into 40 ms round trips. Clients use their default
ciphers unless --cipher: OpenSSH's sftp picks chacha20-poly1305 with sshd but
aes128-gcm with Strongroom (which offers only AES-GCM; psftp: AES-256-CTR with sshd,
AES-128-GCM with Strongroom). `--cipher aes128-gcm@openssh.com` compares OpenSSH's
sftp rows with one cipher on both.

    python bench/sftp.py [--repeat 3] [--psftp-mib 512] [--cipher NAME] [--profile DIR]
                         [--sizes] [--patch NAME,..] [--only openssh|strongroom]
                         [--rows put,get] [--set SECTION.KEY=VALUE] [--big-mib 512]
                         [--small-files 500] [--no-table] [--keep]

--profile DIR  after the table, `py-spy record --nonblocking --threads` (raw collapsed
               stacks in DIR/*.txt; see bench/profiling.py) of Strongroom during an
               OpenSSH sftp put (all threads, then the GIL holder only), a psftp put of
               128 MiB (same two), the rclone row, and the GIL holder during an OpenSSH
               sftp get and a psftp get, each summarised by area (packetizer, SSH cipher
               and MAC, channel buffer, SFTP parsing, handler, at-rest encryption, blob
               I/O, DB), by thread, by function and by the hottest source lines.
--sizes        Strongroom's peak RSS during OpenSSH sftp puts and gets of 10 MiB, 1 GiB
               and 4 GiB (sparse source files; VmRSS sampled every 0.1 s, VmHWM reset
               before each), which should stay flat. Adds about 1 minute.
--patch        start Strongroom through bench/sftp_patches.py with candidate fixes
               monkeypatched in (window4m; see that file), to measure a fix before
               making it. The application code is not changed.
--big-mib, --small-files  smaller files for a quick check (the rows' names follow).

Needs: /usr/sbin/sshd (`apt-get install -y openssh-server`, done here when missing
and running as root), sftp and ssh-keygen, psftp and puttygen (putty-tools), rclone,
py-spy for --profile. Only 127.0.0.1 is used, every client run has a time limit.
About 2-3 minutes with the defaults, --profile adds about 40 s. Not a test: nothing
asserts the goals.
"""
import collections
import os
import re
import shutil
import subprocess
import time

from harness.clients import Clients
from harness.measure import (CutOff, Row, arguments, check_arguments, measure, print_table,
                             workspace)
from harness.procs import (MB, MIB, RssSampler, code_version, make_file, make_small_files,
                           proc_status, reset_hwm, run, sha256_file)
from harness.profiling import SFTP_AREAS, Profiler, summarize
from harness.servers import OpenSSH, Server, Strongroom

ROW_KEYS = ("put", "get", "put4", "psput", "psget", "small")
PARTS, SMALL, RCLONE_TRANSFERS = 4, 4096, 4
PSFTP_TIMEOUT, PSFTP_SLOWEST = 60, 8 * MB   # s; bytes/s: cut-off time is the larger
PROFILE_PSFTP = 128 * MIB
SLOW_RUN = 20   # s: a (row, server) whose run took longer is not repeated


def table_rows(big: int, psftp: int, files: int) -> tuple[Row, ...]:
    part = big // PARTS
    return (Row("put", f"sftp put {big // MIB} MiB (MB/s)", 0.8, size=big),
            Row("get", f"sftp get {big // MIB} MiB (MB/s)", 0.8, size=big),
            Row("put4", f"{PARTS}x sftp put {part // MIB} MiB concurrent (MB/s)", 0.8,
                size=PARTS * part),
            Row("psput", f"psftp put {psftp // MIB} MiB (MB/s)", 0.5, size=psftp),
            Row("psget", f"psftp get {psftp // MIB} MiB (MB/s)", 0.8, size=psftp),
            Row("small", f"rclone {files} x {SMALL // 1024} KiB put (files/s)", 0.8,
                files=files))


# -- the workload -------------------------------------------------------------------

class Workload:
    def __init__(self, tmp: str, clients: Clients, big: int, psftp_size: int, files: int):
        self.tmp, self.c, self.big_size, self.part_size = tmp, clients, big, big // PARTS
        seed = os.urandom(MIB)
        self.big, self.part = os.path.join(tmp, "big.bin"), os.path.join(tmp, "part.bin")
        self.big_sha = make_file(self.big, big, seed)
        self.part_sha = make_file(self.part, self.part_size, seed[::-1])
        self.psftp_size = psftp_size
        # A psftp run can degrade for minutes (against OpenSSH now and then; against
        # a server whose per-request cost grows with its backlog): it is cut off and its
        # rate up to then, from the client's I/O counters, is what the run scores.
        self.ps_timeout = max(PSFTP_TIMEOUT, psftp_size / PSFTP_SLOWEST)
        if psftp_size == big:
            self.ps_src, self.ps_sha = self.big, self.big_sha
        elif psftp_size == self.part_size:
            self.ps_src, self.ps_sha = self.part, self.part_sha
        else:
            self.ps_src = os.path.join(tmp, "psftp.bin")
            self.ps_sha = make_file(self.ps_src, psftp_size, seed[1:] + seed[:1])
        self.small = os.path.join(tmp, "small")
        self.files = len(make_small_files(self.small, files, SMALL))
        self.verified: dict[str, list[str]] = collections.defaultdict(list)

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
        t0 = time.perf_counter()
        if row == "put":
            self.c.sftp(srv, f"put {self.big} big.bin\n")
            return self.big_size / (time.perf_counter() - t0) / MB
        if row == "get":
            out = os.path.join(self.tmp, f"dl-{srv.name}.bin")
            self.c.sftp(srv, f"get big.bin {out}\n")
            figure = self.big_size / (time.perf_counter() - t0) / MB
            self._verify(srv, "sftp get", out, self.big_sha)
            return figure
        if row == "put4":
            self.c.sftp_many(srv, [f"put {self.part} part{i}.bin\n" for i in range(PARTS)])
            return PARTS * self.part_size / (time.perf_counter() - t0) / MB
        if row in ("psput", "psget"):
            return self._psftp(row, srv)
        if row == "small":
            return self._small(srv, rnd)
        raise ValueError(row)

    def _psftp(self, row: str, srv: Server) -> float:
        out = os.path.join(self.tmp, f"psdl-{srv.name}.bin")
        script, progress = (f"put {self.ps_src} ps.bin\n", "rchar") if row == "psput" \
            else (f"get ps-get.bin {out}\n", "wchar")
        t0 = time.perf_counter()
        try:
            self.c.psftp(srv, script, timeout=self.ps_timeout, progress=progress)
        except CutOff as e:
            e.figure = e.done / (time.perf_counter() - t0) / MB
            raise
        figure = self.psftp_size / (time.perf_counter() - t0) / MB
        if row == "psget":
            self._verify(srv, "psftp get", out, self.ps_sha)
        return figure

    def _small(self, srv: Server, rnd: int) -> float:
        remote = self.c.rclone_remote(srv, f"small-r{rnd}")
        t0 = time.perf_counter()
        self.c.rclone("copy", "--transfers", str(RCLONE_TRANSFERS), self.small, remote)
        figure = self.files / (time.perf_counter() - t0)
        listed = self.c.rclone("lsf", remote).stdout.split()
        if len(listed) != self.files:
            raise RuntimeError(f"rclone: {len(listed)} files arrived, not {self.files}")
        return figure

    def _verify(self, srv: Server, what: str, path: str, expected: str) -> None:
        got = sha256_file(path)
        os.unlink(path)
        self.verified[srv.name].append(f"{what} {'ok' if got == expected else 'DIFFERS'}")
        if got != expected:
            raise RuntimeError(f"{what}: the downloaded file differs (SHA-256)")


# -- profiling with py-spy ----------------------------------------------------------

def profile(sr: Strongroom, work: Workload, out_dir: str, rows: list[str]) -> None:
    prof = Profiler(out_dir, sr.proc.pid, rate=200, threads=True)
    print(f"\nProfiles of Strongroom (py-spy --nonblocking --threads, 200 Hz) in {out_dir}")
    ps, big, files = min(work.psftp_size, PROFILE_PSFTP) // MIB, work.big_size // MIB, work.files
    jobs = (("sftp-put", f"OpenSSH sftp put {big} MiB", "put", False),
            ("sftp-put", f"OpenSSH sftp put {big} MiB, GIL holder only", "put", True),
            ("psftp-put", f"psftp put {ps} MiB", "psput", False),
            ("psftp-put", f"psftp put {ps} MiB, GIL holder only", "psput", True),
            ("rclone-small", f"rclone {files} x {SMALL // 1024} KiB", "small", False),
            ("rclone-small", f"rclone {files} x {SMALL // 1024} KiB, GIL holder only",
             "small", True),
            ("sftp-get", f"OpenSSH sftp get {big} MiB, GIL holder only", "get", True),
            ("psftp-get", f"psftp get {work.psftp_size // MIB} MiB, GIL holder only", "psget",
             True))
    small = _shorter_psftp(work)
    for name, label, row, gil in jobs:
        if row not in rows:
            continue
        # psftp get downloads the file the probe uploaded: the whole workload's
        w = work if row == "psget" else small
        try:
            figure, raw = prof.record(name, lambda row=row, w=w: w.run(row, sr, 90), gil)
        except RuntimeError as e:
            print(f"{label}: FAILED: {e}")
            continue
        unit = "files/s" if row == "small" else "MB/s"
        print(f"\n{label}: {figure:.1f} {unit} under the profiler ({raw})")
        print(summarize(raw, SFTP_AREAS))


def _shorter_psftp(work: Workload) -> Workload:
    """The same workload with a psftp file of at most PROFILE_PSFTP."""
    small = Workload.__new__(Workload)
    small.__dict__.update(work.__dict__)
    small.psftp_size = min(work.psftp_size, PROFILE_PSFTP)
    if small.psftp_size < work.psftp_size:
        small.ps_src = os.path.join(work.tmp, "psftp-profile.bin")
        with open(work.ps_src, "rb") as src, open(small.ps_src, "wb") as dst:
            dst.write(src.read(small.psftp_size))
    return small


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
            print(f"  {what} {size // MIB:5} MiB {figure}   max VmRSS {sampler.stop():6.0f} MiB"
                  f"   VmHWM {proc_status(sr.proc.pid, 'VmHWM'):6.0f} MiB", flush=True)
        os.unlink(src)
        try:
            clients.sftp(sr, f"rm {name}\n")
        except RuntimeError:
            pass


# -- main ---------------------------------------------------------------------------

def parse_args():
    ap = arguments(__doc__, ROW_KEYS, "openssh", repeat=3)
    ap.add_argument("--psftp-mib", type=int, default=512,
                    help="size of the psftp transfers (issue 4: 512)")
    ap.add_argument("--sizes", action="store_true", help="Strongroom RSS for 10 MiB..4 GiB")
    ap.add_argument("--cipher", default="", metavar="NAME",
                    help="OpenSSH sftp -c NAME for both servers (default: the client's "
                         "choice, chacha20-poly1305 with OpenSSH and aes128-gcm with Strongroom)")
    ap.add_argument("--patch", default="", metavar="NAME[,NAME]",
                    help="run Strongroom with experimental fixes from bench/sftp_patches.py")
    ap.add_argument("--big-mib", type=int, default=512,
                    help="size of the sftp file (the concurrent puts move a quarter each)")
    ap.add_argument("--small-files", type=int, default=500, help="files in the rclone row")
    args = ap.parse_args()
    if not 1 <= args.psftp_mib <= 4096:
        raise SystemExit("--psftp-mib is 1..4096")
    if not (PARTS <= args.big_mib <= 4096 and 1 <= args.small_files <= 10000):
        raise SystemExit(f"--big-mib is {PARTS}..4096, --small-files 1..10000")
    for tool in ("sftp", "ssh-keygen", "psftp", "puttygen", "rclone"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found (apt-get install -y openssh-client putty-tools "
                             "rclone)")
    return args


def main() -> None:
    args = parse_args()
    keys = check_arguments(args, ROW_KEYS)
    big, psftp = args.big_mib * MIB, args.psftp_mib * MIB
    rows = [r for r in table_rows(big, psftp, args.small_files) if r.key in keys]
    print(f"Strongroom code: {code_version()}", flush=True)
    with workspace("sr-sftp-bench-", args.keep) as (tmp, servers):
        key = os.path.join(tmp, "client_key")
        run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "bench-client", "-f", key)
        run("puttygen", key, "-O", "private", "-o", key + ".ppk")
        sr = Strongroom(tmp, "sftp", args.set, key_pub=key + ".pub", patches=args.patch)
        if args.only != "strongroom" and not args.no_table:
            servers.append(OpenSSH(tmp, key + ".pub"))
        if args.only != "openssh":
            servers.append(sr)
        clients = Clients(tmp, key, key + ".ppk", servers, args.cipher)
        work = None
        if not args.no_table or args.profile:
            print(f"preparing {big // MIB} MiB, {big // PARTS // MIB} MiB"
                  f"{'' if psftp in (big, big // PARTS) else f', {args.psftp_mib} MiB'}"
                  f" and {args.small_files} small files in {tmp}", flush=True)
            work = Workload(tmp, clients, big, psftp, args.small_files)
        for srv in servers:
            srv.start()
            algos = work.probe(srv) if work else ""
            patched = f" WITH PATCHES {args.patch}" if srv is sr and args.patch else ""
            print(f"{srv.name}{patched}: 127.0.0.1:{srv.port} pid {srv.proc.pid}, {algos}; RSS "
                  f"at start {proc_status(srv.proc.pid, 'VmRSS'):.0f} MiB", flush=True)
        if not args.no_table:
            table(servers, work, rows, args, sr)
        if args.profile and sr in servers:
            profile(sr, work, args.profile, keys)
        if args.sizes and sr in servers:
            sizes(sr, clients, tmp)
        sr.report_errors()


def table(servers: list[Server], work: Workload, rows: list[Row], args, sr: Strongroom):
    results = measure(servers, rows, work.run, args.repeat, slow_after=SLOW_RUN)
    settings = f"; Strongroom settings: {args.set}" if args.set else ""
    print_table(results, servers, rows, args.repeat, settings)
    print("downloads checked by SHA-256: " + "; ".join(
        f"{n}: " + ", ".join(f"{k} x{c}" for k, c in sorted(collections.Counter(v).items()))
        for n, v in work.verified.items()))
    if sr in servers:
        print(f"Strongroom daemon VmHWM now {proc_status(sr.proc.pid, 'VmHWM'):.0f} MiB "
              f"(since the last reset), VmRSS {proc_status(sr.proc.pid, 'VmRSS'):.0f} MiB")


if __name__ == "__main__":
    main()
