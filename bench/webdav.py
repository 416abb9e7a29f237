#!/usr/bin/env python3
"""WebDAV throughput: Strongroom against Apache mod_dav, the same curl client, one run.

Starts a private Apache (mod_dav + mod_ssl, event MPM, Basic auth from an htpasswd
file with Debian's default apr1 hashes, no access log) and a Strongroom daemon
(`python -m appliance.cli serve`, encryption at rest) on free loopback ports, both
with Strongroom's self-signed certificate (TLS 1.2+), and prints one table:

    PUT 512 MiB, GET 512 MiB                        MB/s (1 MB = 10^6 bytes)
    4 concurrent PUTs of 128 MiB                    aggregate MB/s
    500 files of 4 KiB by 4 keep-alive curl streams files/s (4 curl processes, each
                                                    125 `-T file URL` pairs via -K)
    peak RSS                                        VmHWM (Apache: summed over its
                                                    processes, shared pages counted twice)

with the ratio Strongroom/Apache and the goal from issue 3 for each row. Each row runs
--repeat times, alternating which server goes first; the best run counts (other load
on a shared machine only ever makes a run slower) and the spread is shown. Each round
also prints the server's CPU use (user/sys). The downloaded 512 MiB file is checked
by SHA-256 at the end.

    python bench/webdav.py [--repeat 5] [--large] [--profile DIR [--profile-gil]]
           [--set webdav.block_size=262144 ...] [--only strongroom] [--no-table]

--large     also a 4 GiB PUT (chunked, from a generator through curl -T -) and GET
            against Strongroom with the daemon's RSS sampled throughout, and Range
            GETs of 64 KiB in a 1 GiB file (verified against the generator), timed
            against the whole-file GET.
--profile   after the table, repeat each Strongroom row under `py-spy record
            --nonblocking` (collapsed stacks DIR/ROW.txt, readable by speedscope or
            inferno; an SVG too if inferno-flamegraph or flamegraph.pl is installed) and
            print the functions with the largest share of samples. Default: all busy
            threads (wall time, I/O waits included); --profile-gil: CPU in Python only.
--set       change an option of the benchmark's own strongroom.toml (repeatable).

Needs: apache2 (`apt-get install -y apache2`), curl, and py-spy for --profile.
Only 127.0.0.1 is used. Not a test: nothing here asserts the goals. About 1 minute
with the defaults; --large adds about 1 minute, --profile about 30 s.
"""
import argparse
import collections
import hashlib
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
USER, PASSWORD = "bench", "Load-test-secret-42"
MIB = 1 << 20
MB = 1e6
BIG, PART, PARTS, SMALL, SMALL_FILES, STREAMS = 512 * MIB, 128 * MIB, 4, 4096, 500, 4
CURL_TIMEOUT = 900
APACHE_MODULES = ("mpm_event", "authz_core", "authn_core", "authn_file", "auth_basic",
                  "authz_user", "socache_shmcb", "ssl", "dav", "dav_fs")
GOALS = {"put": 1.0, "get": 1.0, "put4": 0.8, "small": 0.5}
ROWS = (("put", f"PUT {BIG // MIB} MiB (MB/s)"),
        ("get", f"GET {BIG // MIB} MiB (MB/s)"),
        ("put4", f"{PARTS}x PUT {PART // MIB} MiB concurrent (MB/s)"),
        ("small", f"{SMALL_FILES} x {SMALL // 1024} KiB PUT, {STREAMS} streams (files/s)"))

from benchlib import free_port, proc_status, run


# -- small helpers ------------------------------------------------------------------



def wait_port(port: int, timeout: float = 30, proc=None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"server on port {port} exited with status {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"port {port} did not open within {timeout:.0f} s")






CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> tuple[float, float]:
    """(user, system) CPU seconds of the processes, their reaped children included."""
    user = system = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            user += (int(fields[11]) + int(fields[13])) / CLK_TCK
            system += (int(fields[12]) + int(fields[14])) / CLK_TCK
        except (OSError, IndexError, ValueError):
            pass
    return user, system


def children_of(pid: int) -> list[int]:
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(name))
            except (OSError, IndexError, ValueError):
                pass
    return out


def tls_info(port: int) -> str:
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
            ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
        return f"{s.version()} {s.cipher()[0]}"


def pattern_block(i: int, seed: bytes) -> bytes:
    """Block i (1 MiB) of the deterministic test stream: cheap to make and to check."""
    return seed[:8] + i.to_bytes(8, "big") + seed[16:]


def make_file(path: str, size: int, seed: bytes) -> None:
    with open(path, "wb") as f:
        for i in range(size // MIB):
            f.write(pattern_block(i, seed))
        if size % MIB:
            f.write(seed[:size % MIB])


# -- the two servers ----------------------------------------------------------------

class Server:
    name = ""
    proc: subprocess.Popen
    port: int

    def url(self, path: str) -> str:
        return f"https://127.0.0.1:{self.port}/{path.lstrip('/')}"

    def pids(self) -> list[int]:
        return [self.proc.pid]

    def sample_peak(self) -> None:
        """Remember each process's VmHWM (Apache children come and go)."""
        for pid in self.pids():
            hwm = proc_status(pid, "VmHWM")
            if hwm == hwm:
                self.peaks[pid] = max(self.peaks.get(pid, 0), hwm)

    def peak_rss(self) -> str:
        self.sample_peak()
        total = sum(self.peaks.values())
        return f"{total:.0f}" if len(self.peaks) < 2 else f"{total:.0f} ({len(self.peaks)} procs)"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


class Strongroom(Server):
    name = "Strongroom"

    def __init__(self, tmp: str, settings: list[str]):
        self.peaks = {}
        self.data = os.path.join(tmp, "strongroom")
        self.port = free_port()
        self.cli = [sys.executable, "-m", "strongroom.appliance.cli"]
        self.env = dict(os.environ, STRONGROOM_DATA_DIR=self.data)
        self.env["PYTHONPATH"] = REPO + os.pathsep + self.env.get("PYTHONPATH", "")
        self._cli("init", "--webdav-port", str(self.port), "--sftp-port", str(free_port()))
        self._cli("client", "add", "bench")
        self._cli("user", "add", USER, "--client", "bench", "--password-stdin", "--no-totp",
                  "--json", input=PASSWORD + "\n")
        for item in settings:
            set_toml(os.path.join(self.data, "strongroom.toml"), item)
        self.cert = os.path.join(self.data, "tls", "cert.pem")
        self.key = os.path.join(self.data, "tls", "key.pem")
        self.log_path = os.path.join(tmp, "strongroom-serve.log")

    def _cli(self, *args, **kw):
        return run(*self.cli, *args, env=self.env, cwd=REPO, **kw)

    def start(self) -> None:
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen([*self.cli, "serve"], env=self.env, cwd=REPO,
                                     stdout=self._log, stderr=subprocess.STDOUT)
        wait_port(self.port, proc=self.proc)


class Apache(Server):
    name = "Apache"

    def __init__(self, tmp: str, cert: str, key: str):
        self.peaks = {}
        self.root = os.path.join(tmp, "apache")
        self.port = free_port()
        dav, run_dir = os.path.join(self.root, "dav"), os.path.join(self.root, "run")
        for d in (dav, run_dir, os.path.join(self.root, "lock")):
            os.makedirs(d, exist_ok=True)
        binary = shutil.which("apache2") or shutil.which("httpd")
        if binary is None:
            raise SystemExit("apache2 not found: apt-get install -y apache2")
        self.binary = binary
        modules = "/usr/lib/apache2/modules"
        htpasswd = os.path.join(self.root, "htpasswd")
        run("htpasswd", "-cb", htpasswd, USER, PASSWORD)  # Debian default: apr1 (MD5)
        as_root = os.geteuid() == 0
        if as_root:  # workers drop to www-data; it must own the DAV tree
            for d in (dav, os.path.join(self.root, "lock")):
                shutil.chown(d, "www-data", "www-data")
            os.chmod(self.root, 0o755)
            os.chmod(tmp, 0o755)
        loads = "\n".join(f"LoadModule {m}_module {modules}/mod_{m}.so" for m in APACHE_MODULES)
        self.conf = os.path.join(self.root, "httpd.conf")
        with open(self.conf, "w") as f:
            f.write(f"""{loads}
ServerRoot "{self.root}"
ServerName 127.0.0.1
Listen 127.0.0.1:{self.port} https
PidFile "{run_dir}/httpd.pid"
DefaultRuntimeDir "{run_dir}"
Mutex file:{run_dir} default
ErrorLog "{self.root}/error.log"
LogLevel warn
{"User www-data" if as_root else ""}
{"Group www-data" if as_root else ""}
StartServers 2
ServerLimit 16
ThreadsPerChild 25
MaxRequestWorkers 150
MaxConnectionsPerChild 0
KeepAlive On
MaxKeepAliveRequests 1000
KeepAliveTimeout 15
Timeout 300
LimitRequestBody 0
SSLSessionCache "shmcb:{run_dir}/ssl_scache(512000)"
SSLProtocol all -SSLv3 -TLSv1 -TLSv1.1
SSLEngine on
SSLCertificateFile "{cert}"
SSLCertificateKeyFile "{key}"
DavLockDB "{self.root}/lock/DavLock"
DocumentRoot "{dav}"
<Directory "{dav}">
    Dav On
    AuthType Basic
    AuthName "bench"
    AuthBasicProvider file
    AuthUserFile "{htpasswd}"
    Require valid-user
</Directory>
""")
        run(binary, "-t", "-f", self.conf)

    def start(self) -> None:
        self.proc = subprocess.Popen([self.binary, "-f", self.conf, "-DFOREGROUND"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        wait_port(self.port, proc=self.proc)

    def pids(self) -> list[int]:
        return [self.proc.pid, *children_of(self.proc.pid)]


def set_toml(path: str, item: str) -> None:
    """Set section.key=value in the benchmark's strongroom.toml (value: int or string)."""
    dotted, _, value = item.partition("=")
    section, _, key = dotted.partition(".")
    if not (section and key and value):
        raise SystemExit(f"--set wants section.key=value, not {item!r}")
    literal = value if re.fullmatch(r"-?\d+|true|false", value) else f'"{value}"'
    lines, current, done = open(path).read().splitlines(), None, False
    for i, line in enumerate(lines):
        m = re.match(r"\s*\[(\w+)\]", line)
        if m:
            current = m.group(1)
        elif current == section and re.match(rf"\s*(#\s*)?{re.escape(key)}\s*=", line):
            lines[i], done = f"{key} = {literal}", True
    if not done:
        raise SystemExit(f"{dotted} is not in {path}")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


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


class Workload:
    """The rows of the table, the same requests for either server."""

    def __init__(self, tmp: str, seed: bytes):
        self.big = os.path.join(tmp, "big.bin")
        self.part = os.path.join(tmp, "part.bin")
        make_file(self.big, BIG, seed)
        make_file(self.part, PART, seed[::-1])
        small_dir = os.path.join(tmp, "small")
        os.makedirs(small_dir)
        self.small = []
        for i in range(SMALL_FILES):
            path = os.path.join(small_dir, f"f{i:03d}.bin")
            with open(path, "wb") as f:
                f.write(os.urandom(SMALL))
            self.small.append(path)
        self.tmp = tmp
        self.big_sha256 = _sha256_file(self.big)

    def verify(self, srv: Server) -> str:
        """Download the big file again (untimed) and compare its SHA-256."""
        h = hashlib.sha256()
        p = subprocess.Popen([*curl_base()[:-2], "-f", srv.url("big.bin")],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + CURL_TIMEOUT
        while time.monotonic() < deadline and (block := p.stdout.read(MIB)):
            h.update(block)
        p.stdout.close()
        p.wait(timeout=60)
        return "verified" if h.hexdigest() == self.big_sha256 else "DIFFERS"

    def prepare(self, srv: Server) -> None:
        curl("-X", "MKCOL", srv.url("small/"), ok=("201", "405"), what="MKCOL")
        curl("-T", self.small[0], srv.url("warmup.bin"), what="warm-up PUT")
        curl(srv.url("warmup.bin"), what="warm-up GET")

    def run(self, row: str, srv: Server, rnd: int) -> float:
        """Do one row once; return its figure (MB/s or files/s)."""
        t0 = time.perf_counter()
        if row == "put":
            curl("-T", self.big, srv.url("big.bin"), what="PUT big")
            return BIG / (time.perf_counter() - t0) / MB
        if row == "get":
            code, got, _, _ = curl(srv.url("big.bin"), ok=("200",), what="GET big")
            if int(got) != BIG:
                raise RuntimeError(f"GET big: {got} bytes, expected {BIG}")
            return BIG / (time.perf_counter() - t0) / MB
        if row == "put4":
            curl_many([["-o", "/dev/null", "-T", self.part, srv.url(f"part{i}.bin")]
                       for i in range(PARTS)], f"{PARTS}x PUT", 1)
            return PARTS * PART / (time.perf_counter() - t0) / MB
        if row == "small":
            configs = []
            per = SMALL_FILES // STREAMS
            for s in range(STREAMS):
                cfg = os.path.join(self.tmp, f"{srv.name}-stream{s}.curlrc")
                with open(cfg, "w") as f:
                    for path in self.small[s * per:(s + 1) * per]:
                        name = f"r{rnd}-{os.path.basename(path)}"
                        f.write(f'upload-file = "{path}"\nurl = "{srv.url("small/" + name)}"\n'
                                'output = "/dev/null"\n')
                configs.append(cfg)
            t0 = time.perf_counter()
            connects = curl_many([["-K", c] for c in configs], "small files", per)
            figure = per * STREAMS / (time.perf_counter() - t0)
            if connects != STREAMS:
                print(f"  note: {srv.name} needed {connects} connections for {STREAMS} "
                      "keep-alive streams")
            return figure
        raise ValueError(row)


# -- profiling with py-spy ----------------------------------------------------------

class Profiler:
    def __init__(self, out_dir: str, pid: int, gil: bool):
        self.out_dir, self.pid, self.gil = out_dir, pid, gil
        os.makedirs(out_dir, exist_ok=True)
        if shutil.which("py-spy") is None:
            raise SystemExit("py-spy not found: pip install py-spy")

    def record(self, name: str, fn) -> tuple[float, str]:
        raw = os.path.join(self.out_dir, f"{name}.txt")
        args = ["py-spy", "record", "--pid", str(self.pid), "--rate", "250", "--nonblocking",
                "--format", "raw", "-o", raw, *(["--gil"] if self.gil else [])]
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
        svg = os.path.join(self.out_dir, f"{name}.svg")
        _flamegraph(raw, svg)
        return figure, raw


def _flamegraph(raw: str, svg: str) -> None:
    """py-spy can only write one format per run; a flame graph needs flamegraph.pl, so
    the raw collapsed stacks are the primary output (speedscope/inferno read them too)."""
    tool = shutil.which("inferno-flamegraph") or shutil.which("flamegraph.pl")
    if tool:
        with open(raw) as src, open(svg, "w") as dst:
            subprocess.run([tool], stdin=src, stdout=dst, timeout=120)


FRAME = re.compile(r"^(?P<func>.+?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def summarize(raw: str, top: int = 18) -> str:
    """Top functions by self and by inclusive share of the (non-idle) samples."""
    self_t, incl, modules = collections.Counter(), collections.Counter(), collections.Counter()
    total = idle = 0
    with open(raw) as f:
        for line in f:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not count.isdigit():
                continue
            n = int(count)
            frames = [_short(fr) for fr in stack.split(";")]
            frames = [fr for fr in frames if fr]
            if not frames:
                continue
            if _idle(stack, frames[-1]):
                idle += n
                continue
            total += n
            self_t[frames[-1]] += n
            for fr in set(frames):
                incl[fr] += n
            modules[_area(stack.split(";"))] += n
    if not total:
        return "  (no samples)"
    out = [f"  {total} busy samples ({idle} of idle workers waiting for work dropped); "
           "by area: " + ", ".join(
        f"{k} {v / total:.0%}" for k, v in modules.most_common(8))]
    out.append("  self time:")
    out += [f"    {v / total:6.1%}  {k}" for k, v in self_t.most_common(top)]
    out.append("  inclusive (Strongroom and wsgidav/cheroot frames):")
    shown = 0
    for k, v in incl.most_common():
        if any(s in k for s in ("appliance/", "providers/", "auth/", "wsgidav/", "cheroot/",
                                "sqlalchemy/orm/session", "ssl.py")):
            out.append(f"    {v / total:6.1%}  {k}")
            shown += 1
            if shown >= top:
                break
    return "\n".join(out)


WAITS = ("Condition.wait (", "EpollSelector.select (", "Event.wait (", "Queue.get (")


def _idle(stack: str, leaf: str) -> bool:
    """A worker waiting for a request (py-spy cannot always tell in --nonblocking mode)."""
    return leaf.startswith(WAITS) and not any(
        k in stack for k in ("wsgidav/", "/appliance/", "/providers/", "sqlalchemy"))


def _short(frame: str) -> str:
    m = FRAME.match(frame.strip())
    if not m:
        return "" if frame.startswith(("process ", "thread ")) else frame.strip()
    path = m.group("file")
    for marker in ("site-packages/", "lib/python3", REPO + "/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{m.group('func')} ({path})"


def _area(frames: list[str]) -> str:
    """Which layer the innermost interesting frame belongs to."""
    for fr in reversed(frames):
        for key, label in (("sqlalchemy", "sqlalchemy"), ("sqlite3", "sqlalchemy"),
                           ("/appliance/db/", "sqlalchemy"),
                           ("argon2", "argon2"), ("/providers/", "providers (crypto/io)"),
                           ("cryptography", "providers (crypto/io)"),
                           ("/appliance/", "appliance"), ("/auth/", "auth"),
                           ("ssl.py", "ssl"), ("cheroot", "cheroot"), ("wsgidav", "wsgidav"),
                           ("logging", "logging"), ("threading.py", "threading/idle")):
            if key in fr:
                return label
    return "other"


# -- large files (Strongroom only) --------------------------------------------------

class RssSampler(threading.Thread):
    def __init__(self, pid: int, interval: float = 0.25):
        super().__init__(daemon=True)
        self.pid, self.interval, self.max_rss = pid, interval, 0.0
        self._stop_event = threading.Event()

    def run(self):
        while not self._stop_event.wait(self.interval):
            rss = proc_status(self.pid, "VmRSS")
            if rss == rss:
                self.max_rss = max(self.max_rss, rss)

    def stop(self) -> float:
        self._stop_event.set()
        self.join(timeout=5)
        return self.max_rss


def generator_cmd(size: int, seed_file: str) -> list[str]:
    """A process writing the deterministic stream of `size` bytes to stdout."""
    code = (f"import sys;s=open({seed_file!r},'rb').read();o=sys.stdout.buffer\n"
            f"for i in range({size // MIB}):o.write(s[:8]+i.to_bytes(8,'big')+s[16:])\n")
    return [sys.executable, "-c", code]


def stream_put(srv: Server, path: str, size: int, seed_file: str) -> float:
    """PUT `size` generated bytes with Transfer-Encoding: chunked (no Content-Length)."""
    gen = subprocess.Popen(generator_cmd(size, seed_file), stdout=subprocess.PIPE)
    t0 = time.perf_counter()
    p = subprocess.run([*curl_base(), "-o", "/dev/null", "-T", "-", srv.url(path)],
                       stdin=gen.stdout, capture_output=True, text=True,
                       timeout=CURL_TIMEOUT + 30)
    gen.stdout.close()
    gen.wait(timeout=60)
    dt = time.perf_counter() - t0
    if p.returncode:
        raise RuntimeError(f"PUT {path}: curl exit {p.returncode}: {p.stderr.strip()[:300]}")
    code, _, up, _ = check_codes(p.stdout, ("201", "204"), f"PUT {path}", 1)[0]
    if int(up) < size:  # size_upload counts the chunk framing too
        raise RuntimeError(f"PUT {path}: sent {up} bytes, expected {size}")
    return size / dt / MB


def large(srv: Strongroom, seed: bytes, tmp: str) -> None:
    huge, gib = 4096 * MIB, 1024 * MIB
    seed_file = os.path.join(tmp, "seed.bin")
    with open(seed_file, "wb") as f:
        f.write(seed)
    print("\nLarge files against Strongroom (curl -T - from a generator: chunked PUT)")
    print(f"  daemon RSS at start {proc_status(srv.proc.pid, 'VmRSS'):.0f} MiB, "
          f"peak so far {proc_status(srv.proc.pid, 'VmHWM'):.0f} MiB")
    for what, fn in (
            ("PUT 4 GiB", lambda: stream_put(srv, "huge.bin", huge, seed_file)),
            ("GET 4 GiB", lambda: _get_size(srv, "huge.bin", huge))):
        sampler = RssSampler(srv.proc.pid)
        sampler.start()
        try:
            mbps = fn()
        except RuntimeError as e:
            sampler.stop()
            print(f"  {what:12} FAILED: {e}")
            continue
        peak = sampler.stop()
        print(f"  {what:12} {mbps:8.1f} MB/s   max RSS during {peak:6.0f} MiB   "
              f"VmHWM {proc_status(srv.proc.pid, 'VmHWM'):6.0f} MiB")
    try:
        mbps = stream_put(srv, "one-gib.bin", gib, seed_file)
    except RuntimeError as e:
        print(f"  Range GET: could not upload the 1 GiB file: {e}")
        return
    print(f"  PUT 1 GiB    {mbps:8.1f} MB/s")
    full_t0 = time.perf_counter()
    _get_size(srv, "one-gib.bin", gib)
    full = time.perf_counter() - full_t0
    span = 64 * 1024
    for label, start in (("end", gib - span), ("start", 0), ("middle", gib // 2 + 12345)):
        expected = _expected_slice(seed, start, span)
        out = os.path.join(tmp, "range.bin")
        t0 = time.perf_counter()
        curl("-r", f"{start}-{start + span - 1}", srv.url("one-gib.bin"), out=out,
             ok=("206",), what=f"Range GET {label}")
        dt = time.perf_counter() - t0
        with open(out, "rb") as f:
            good = f.read() == expected
        os.unlink(out)
        print(f"  Range GET 64 KiB at the {label:6} of 1 GiB: {dt * 1000:7.1f} ms "
              f"({'bytes verified' if good else 'WRONG BYTES'}); the whole GET took "
              f"{full * 1000:.0f} ms")
    print(f"  daemon peak RSS (VmHWM) after large files: "
          f"{proc_status(srv.proc.pid, 'VmHWM'):.0f} MiB")


def _get_size(srv: Server, path: str, size: int) -> float:
    t0 = time.perf_counter()
    _, got, _, _ = curl(srv.url(path), ok=("200",), what=f"GET {path}")
    if int(got) != size:
        raise RuntimeError(f"GET {path}: {got} bytes, expected {size}")
    return size / (time.perf_counter() - t0) / MB


def _sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(MIB):
            h.update(block)
    return h.hexdigest()


def _expected_slice(seed: bytes, start: int, length: int) -> bytes:
    first, last = start // MIB, (start + length - 1) // MIB
    data = b"".join(pattern_block(i, seed) for i in range(first, last + 1))
    return data[start - first * MIB:start - first * MIB + length]


# -- main ---------------------------------------------------------------------------

def main() -> None:
    global ROWS
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5, help="runs per row; the best counts")
    ap.add_argument("--large", action="store_true", help="4 GiB PUT/GET and a Range GET")
    ap.add_argument("--profile", metavar="DIR", help="py-spy each Strongroom row into DIR")
    ap.add_argument("--profile-gil", action="store_true",
                    help="with --profile: only samples of the thread holding the GIL")
    ap.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                    help="change the benchmark's strongroom.toml (repeatable)")
    ap.add_argument("--only", choices=("apache", "strongroom"))
    ap.add_argument("--rows", default=",".join(r for r, _ in ROWS), metavar="ROW[,ROW]",
                    help="rows to run (default: all): " + ", ".join(r for r, _ in ROWS))
    ap.add_argument("--no-table", action="store_true",
                    help="skip the comparison (with --large or --profile)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()
    if not 1 <= args.repeat <= 10:
        raise SystemExit("--repeat is 1..10")
    ROWS = tuple((r, label) for r, label in ROWS if r in args.rows.split(","))
    if not ROWS:
        raise SystemExit("--rows names none of the rows")

    started = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="sr-webdav-bench-")
    servers: list[Server] = []
    try:
        seed = os.urandom(MIB)
        sr = Strongroom(tmp, args.set)
        if args.only != "strongroom":
            servers.append(Apache(tmp, sr.cert, sr.key))
        if args.only != "apache":
            servers.append(sr)
        print(f"preparing {BIG // MIB} MiB, {PART // MIB} MiB and {SMALL_FILES} small files "
              f"in {tmp}", flush=True)
        work = Workload(tmp, seed)
        for srv in servers:
            srv.start()
            print(f"{srv.name}: https://127.0.0.1:{srv.port}/ pid {srv.proc.pid}, "
                  f"{tls_info(srv.port)}, RSS at start {proc_status(srv.proc.pid, 'VmRSS'):.0f} "
                  f"MiB (peak {proc_status(srv.proc.pid, 'VmHWM'):.0f})", flush=True)
            work.prepare(srv)
            srv.sample_peak()
        results = measure(servers, work, 0 if args.no_table else args.repeat)
        if not args.no_table:
            print_table(results, servers, args)
            if any(row == "put" for row, _ in ROWS):  # the file the put row uploaded
                print("GET of the 512 MiB file, SHA-256: " + ", ".join(
                    f"{srv.name} {work.verify(srv)}" for srv in servers))
        if args.profile and sr in servers:
            profile(sr, work, args)
        if args.large and sr in servers:
            large(sr, seed, tmp)
        tail = os.path.join(tmp, "strongroom-serve.log")
        if os.path.exists(tail):
            lines = open(tail, errors="replace").read().splitlines()
            errors = [i for i, line in enumerate(lines)
                      if "Traceback" in line or " ERROR " in line]
            if errors:
                print(f"\nStrongroom logged {len(errors)} error line(s); the first, with "
                      "what follows it:")
                print("\n".join("  " + line[:200] for line in lines[errors[0]:errors[0] + 30]))
        print(f"\ntotal time {time.monotonic() - started:.0f} s")
    finally:
        for srv in servers:
            if getattr(srv, "proc", None) is not None:
                srv.stop()
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def measure(servers: list[Server], work: Workload, repeat: int) -> dict:
    """Run every row `repeat` times; rounds alternate the server order so that drift
    (other load on the machine, page cache growth) hits both alike."""
    results: dict[str, dict[str, list[float]]] = {}
    for rnd in range(repeat):
        for row, label in ROWS:
            for srv in (servers if rnd % 2 == 0 else servers[::-1]):
                cpu0, wall0 = cpu_seconds(srv.pids()), time.perf_counter()
                try:
                    figure = work.run(row, srv, rnd)
                except RuntimeError as e:
                    print(f"  {srv.name} {label}: FAILED: {e}", flush=True)
                    figure = float("nan")
                cpu1, wall = cpu_seconds(srv.pids()), time.perf_counter() - wall0
                usr, system = cpu1[0] - cpu0[0], cpu1[1] - cpu0[1]
                srv.sample_peak()
                if figure == figure:
                    results.setdefault(row, {}).setdefault(srv.name, []).append(figure)
                print(f"  round {rnd + 1} {label:44} {srv.name:10} {figure:8.1f}   server CPU "
                      f"{(usr + system) / wall:4.0%} of wall (user {usr:4.2f} s, "
                      f"sys {system:4.2f} s)", flush=True)
    return results


def print_table(results, servers, args) -> None:
    names = [s.name for s in servers]
    both = len(names) == 2
    nan = float("nan")

    def best(row, name):
        return max(results.get(row, {}).get(name, [nan]))

    def spread(row, name):
        runs = sorted(results.get(row, {}).get(name, []))
        return f"{runs[0]:.0f}-{runs[-1]:.0f}" if runs else "-"

    print(f"\nbest of {args.repeat} runs (all runs: min-max); MB = 10^6 bytes; "
          f"{os.cpu_count()} CPUs; Strongroom settings: {args.set or 'defaults'}")
    head = f"{'':46}" + "".join(f"{n:>12}{'':11}" for n in names)
    if both:
        head += f"{'SR/Apache':>10}{'goal':>7}"
    print(head)
    for row, label in ROWS:
        line = f"{label:46}" + "".join(f"{best(row, n):12.1f} {'(' + spread(row, n) + ')':10}"
                                       for n in names)
        if both:
            a, b = best(row, "Apache"), best(row, "Strongroom")
            line += f"{b / a if a else nan:9.2f}x{'>=' + str(GOALS[row]):>7}"
        print(line)
    print(f"{'peak RSS, MiB (VmHWM; Apache: sum of procs)':46}" +
          "".join(f"{s.peak_rss():>12}{'':11}" for s in servers))


def profile(sr: Strongroom, work: Workload, args) -> None:
    prof = Profiler(args.profile, sr.proc.pid, args.profile_gil)
    which = "GIL holder only" if args.profile_gil else "non-idle threads"
    print(f"\nProfiles of Strongroom (py-spy, {which}) in {args.profile}")
    for n, (row, label) in enumerate(ROWS):
        try:
            figure, raw = prof.record(row, lambda row=row, n=n: work.run(row, sr, 100 + n))
        except RuntimeError as e:
            print(f"{label}: FAILED: {e}")
            continue
        print(f"\n{label}: {figure:.1f} under the profiler")
        print(summarize(raw))


if __name__ == "__main__":
    main()
