#!/usr/bin/env python3
"""WebDAV throughput: Strongroom against Apache mod_dav, the same curl client, one run.

Starts a private Apache (mod_dav + mod_ssl, event MPM, Basic auth from an htpasswd
file with Debian's default apr1 hashes, no access log) and a Strongroom daemon
(`python -m strongroom.appliance.cli serve`, encryption at rest) on free loopback
ports, both with Strongroom's self-signed certificate (TLS 1.2+), and prints one table:

    PUT 512 MiB, GET 512 MiB                        MB/s (1 MB = 10^6 bytes)
    4 concurrent PUTs of 128 MiB                    aggregate MB/s
    500 files of 4 KiB by 4 keep-alive curl streams files/s (4 curl processes, each
                                                    125 `-T file URL` pairs via -K)
    peak RSS                                        VmHWM (Apache: summed over its
                                                    processes, shared pages counted twice)

with, for each server, the median, best and range of --repeat runs (rounds alternate
which server goes first), the ratio Strongroom/Apache of the medians and of the bests
against the goal from issue 3, each side's server CPU-seconds per GB (ms per file in
the small-file row), and every run's figure (see bench/measure.py). The downloaded
512 MiB file is checked by SHA-256 at the end.

    python bench/webdav.py [--repeat 5] [--large] [--profile DIR [--profile-gil]]
           [--set webdav.block_size=262144 ...] [--only strongroom] [--no-table]
           [--rows put,get] [--big-mib 512] [--small-files 500] [--keep]

--large     also a 4 GiB PUT (chunked, from a generator through curl -T -) and GET
            against Strongroom with the daemon's RSS sampled throughout, and Range
            GETs of 64 KiB in a 1 GiB file (verified against the generator), timed
            against the whole-file GET.
--profile   after the table, repeat each Strongroom row under `py-spy record
            --nonblocking` (collapsed stacks DIR/ROW.txt; see bench/profiling.py) and
            print where the samples go. Default: all busy threads (wall time, I/O
            waits included); --profile-gil: CPU in Python only.
--set       change an option of the benchmark's own strongroom.toml (repeatable).
--big-mib, --small-files  smaller files for a quick check (the rows' names follow).

Needs: apache2 (`apt-get install -y apache2`), curl, and py-spy for --profile.
Only 127.0.0.1 is used. Not a test: nothing here asserts the goals. About 1 minute
with the defaults; --large adds about 1 minute, --profile about 30 s.
"""
import hashlib
import os
import socket
import ssl
import subprocess
import sys
import time

from harness.clients import CURL_TIMEOUT, check_codes, curl, curl_base, curl_many
from harness.measure import Row, arguments, check_arguments, measure, print_table, workspace
from harness.procs import (MB, MIB, RssSampler, make_file, make_small_files, pattern_block,
                           proc_status)
from harness.profiling import WEBDAV_AREAS, Profiler, summarize
from harness.servers import Apache, Server, Strongroom

ROW_KEYS = ("put", "get", "put4", "small")
PARTS, SMALL, STREAMS = 4, 4096, 4


def table_rows(big: int, files: int) -> tuple[Row, ...]:
    part = big // PARTS
    return (Row("put", f"PUT {big // MIB} MiB (MB/s)", 1.0, size=big),
            Row("get", f"GET {big // MIB} MiB (MB/s)", 1.0, size=big),
            Row("put4", f"{PARTS}x PUT {part // MIB} MiB concurrent (MB/s)", 0.8,
                size=PARTS * part),
            Row("small", f"{files} x {SMALL // 1024} KiB PUT, {STREAMS} streams (files/s)", 0.5,
                files=files))


def url(srv: Server, path: str) -> str:
    return f"https://127.0.0.1:{srv.port}/{path.lstrip('/')}"


def tls_info(port: int) -> str:
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
            ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
        return f"{s.version()} {s.cipher()[0]}"


class Workload:
    """The rows of the table, the same requests for either server."""

    def __init__(self, tmp: str, seed: bytes, big: int, files: int):
        self.tmp, self.big_size, self.part_size = tmp, big, big // PARTS
        self.big, self.part = os.path.join(tmp, "big.bin"), os.path.join(tmp, "part.bin")
        self.big_sha256 = make_file(self.big, big, seed)
        make_file(self.part, self.part_size, seed[::-1])
        self.small = make_small_files(os.path.join(tmp, "small"), files, SMALL)

    def verify(self, srv: Server) -> str:
        """Download the big file again (untimed) and compare its SHA-256."""
        h = hashlib.sha256()
        p = subprocess.Popen([*curl_base()[:-2], "-f", url(srv, "big.bin")],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + CURL_TIMEOUT
        while time.monotonic() < deadline and (block := p.stdout.read(MIB)):
            h.update(block)
        p.stdout.close()
        p.wait(timeout=60)
        return "verified" if h.hexdigest() == self.big_sha256 else "DIFFERS"

    def prepare(self, srv: Server) -> None:
        curl("-X", "MKCOL", url(srv, "small/"), ok=("201", "405"), what="MKCOL")
        curl("-T", self.small[0], url(srv, "warmup.bin"), what="warm-up PUT")
        curl(url(srv, "warmup.bin"), what="warm-up GET")

    def run(self, row: str, srv: Server, rnd: int) -> float:
        """Do one row once; return its figure (MB/s or files/s)."""
        t0 = time.perf_counter()
        if row == "put":
            curl("-T", self.big, url(srv, "big.bin"), what="PUT big")
            return self.big_size / (time.perf_counter() - t0) / MB
        if row == "get":
            _, got, _, _ = curl(url(srv, "big.bin"), ok=("200",), what="GET big")
            if int(got) != self.big_size:
                raise RuntimeError(f"GET big: {got} bytes, expected {self.big_size}")
            return self.big_size / (time.perf_counter() - t0) / MB
        if row == "put4":
            curl_many([["-o", "/dev/null", "-T", self.part, url(srv, f"part{i}.bin")]
                       for i in range(PARTS)], f"{PARTS}x PUT", 1)
            return PARTS * self.part_size / (time.perf_counter() - t0) / MB
        if row == "small":
            return self._small(srv, rnd)
        raise ValueError(row)

    def _small(self, srv: Server, rnd: int) -> float:
        configs, per = [], len(self.small) // STREAMS
        for s in range(STREAMS):
            cfg = os.path.join(self.tmp, f"{srv.name}-stream{s}.curlrc")
            with open(cfg, "w") as f:
                for path in self.small[s * per:(s + 1) * per]:
                    name = f"r{rnd}-{os.path.basename(path)}"
                    f.write(f'upload-file = "{path}"\nurl = "{url(srv, "small/" + name)}"\n'
                            'output = "/dev/null"\n')
            configs.append(cfg)
        t0 = time.perf_counter()
        connects = curl_many([["-K", c] for c in configs], "small files", per)
        figure = per * STREAMS / (time.perf_counter() - t0)
        if connects != STREAMS:
            print(f"  note: {srv.name} needed {connects} connections for {STREAMS} "
                  "keep-alive streams")
        return figure


def profile(sr: Strongroom, work: Workload, rows: list[Row], args) -> None:
    prof = Profiler(args.profile, sr.proc.pid, rate=250, threads=False)
    which = "GIL holder only" if args.profile_gil else "non-idle threads"
    print(f"\nProfiles of Strongroom (py-spy, {which}) in {args.profile}")
    for n, row in enumerate(rows):
        try:
            figure, raw = prof.record(row.key, lambda r=row.key, n=n: work.run(r, sr, 100 + n),
                                      gil=args.profile_gil)
        except RuntimeError as e:
            print(f"{row.label}: FAILED: {e}")
            continue
        print(f"\n{row.label}: {figure:.1f} under the profiler")
        print(summarize(raw, WEBDAV_AREAS, top=18))


# -- large files (Strongroom only) --------------------------------------------------

def stream_put(srv: Server, path: str, size: int, seed_file: str) -> float:
    """PUT `size` generated bytes with Transfer-Encoding: chunked (no Content-Length)."""
    code = (f"import sys;s=open({seed_file!r},'rb').read();o=sys.stdout.buffer\n"
            f"for i in range({size // MIB}):o.write(s[:8]+i.to_bytes(8,'big')+s[16:])\n")
    gen = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    t0 = time.perf_counter()
    p = subprocess.run([*curl_base(), "-o", "/dev/null", "-T", "-", url(srv, path)],
                       stdin=gen.stdout, capture_output=True, text=True,
                       timeout=CURL_TIMEOUT + 30)
    gen.stdout.close()
    gen.wait(timeout=60)
    dt = time.perf_counter() - t0
    if p.returncode:
        raise RuntimeError(f"PUT {path}: curl exit {p.returncode}: {p.stderr.strip()[:300]}")
    _, _, up, _ = check_codes(p.stdout, ("201", "204"), f"PUT {path}", 1)[0]
    if int(up) < size:  # size_upload counts the chunk framing too
        raise RuntimeError(f"PUT {path}: sent {up} bytes, expected {size}")
    return size / dt / MB


def get_size(srv: Server, path: str, size: int) -> float:
    t0 = time.perf_counter()
    _, got, _, _ = curl(url(srv, path), ok=("200",), what=f"GET {path}")
    if int(got) != size:
        raise RuntimeError(f"GET {path}: {got} bytes, expected {size}")
    return size / (time.perf_counter() - t0) / MB


def large(srv: Strongroom, seed: bytes, tmp: str) -> None:
    huge, gib, pid = 4096 * MIB, 1024 * MIB, srv.proc.pid
    seed_file = os.path.join(tmp, "seed.bin")
    with open(seed_file, "wb") as f:
        f.write(seed)
    print("\nLarge files against Strongroom (curl -T - from a generator: chunked PUT)")
    print(f"  daemon RSS at start {proc_status(pid, 'VmRSS'):.0f} MiB, "
          f"peak so far {proc_status(pid, 'VmHWM'):.0f} MiB")
    for what, fn in (("PUT 4 GiB", lambda: stream_put(srv, "huge.bin", huge, seed_file)),
                     ("GET 4 GiB", lambda: get_size(srv, "huge.bin", huge))):
        sampler = RssSampler(pid, interval=0.25)
        sampler.start()
        try:
            mbps = fn()
        except RuntimeError as e:
            sampler.stop()
            print(f"  {what:12} FAILED: {e}")
            continue
        print(f"  {what:12} {mbps:8.1f} MB/s   max RSS during {sampler.stop():6.0f} MiB   "
              f"VmHWM {proc_status(pid, 'VmHWM'):6.0f} MiB")
    try:
        print(f"  PUT 1 GiB    {stream_put(srv, 'one-gib.bin', gib, seed_file):8.1f} MB/s")
    except RuntimeError as e:
        print(f"  Range GET: could not upload the 1 GiB file: {e}")
        return
    ranges(srv, seed, tmp, gib)
    print(f"  daemon peak RSS (VmHWM) after large files: {proc_status(pid, 'VmHWM'):.0f} MiB")


def ranges(srv: Strongroom, seed: bytes, tmp: str, gib: int) -> None:
    """Range GETs of 64 KiB at the end, start and middle of one-gib.bin, checked."""
    full_t0 = time.perf_counter()
    get_size(srv, "one-gib.bin", gib)
    full, span = time.perf_counter() - full_t0, 64 * 1024
    for label, start in (("end", gib - span), ("start", 0), ("middle", gib // 2 + 12345)):
        first, last = start // MIB, (start + span - 1) // MIB
        data = b"".join(pattern_block(i, seed) for i in range(first, last + 1))
        expected = data[start - first * MIB:start - first * MIB + span]
        out = os.path.join(tmp, "range.bin")
        t0 = time.perf_counter()
        curl("-r", f"{start}-{start + span - 1}", url(srv, "one-gib.bin"), out=out,
             ok=("206",), what=f"Range GET {label}")
        dt = time.perf_counter() - t0
        with open(out, "rb") as f:
            good = f.read() == expected
        os.unlink(out)
        print(f"  Range GET 64 KiB at the {label:6} of 1 GiB: {dt * 1000:7.1f} ms "
              f"({'bytes verified' if good else 'WRONG BYTES'}); the whole GET took "
              f"{full * 1000:.0f} ms")


# -- main ---------------------------------------------------------------------------

def main() -> None:
    ap = arguments(__doc__, ROW_KEYS, "apache", repeat=5)
    ap.add_argument("--large", action="store_true", help="4 GiB PUT/GET and a Range GET")
    ap.add_argument("--profile-gil", action="store_true",
                    help="with --profile: only samples of the thread holding the GIL")
    ap.add_argument("--big-mib", type=int, default=512,
                    help="size of the big file (the concurrent PUTs move a quarter each)")
    ap.add_argument("--small-files", type=int, default=500, help="files in the small row")
    args = ap.parse_args()
    if not (PARTS <= args.big_mib <= 4096 and STREAMS <= args.small_files <= 10000):
        raise SystemExit(f"--big-mib is {PARTS}..4096, --small-files {STREAMS}..10000")
    big, files = args.big_mib * MIB, args.small_files // STREAMS * STREAMS
    keys = check_arguments(args, ROW_KEYS)
    rows = [r for r in table_rows(big, files) if r.key in keys]
    with workspace("sr-webdav-bench-", args.keep) as (tmp, servers):
        seed = os.urandom(MIB)
        sr = Strongroom(tmp, "webdav", args.set)
        if args.only != "strongroom":
            servers.append(Apache(tmp, sr.cert, sr.key))
        if args.only != "apache":
            servers.append(sr)
        print(f"preparing {big // MIB} MiB, {big // PARTS // MIB} MiB and {files} small files "
              f"in {tmp}", flush=True)
        work = Workload(tmp, seed, big, files)
        for srv in servers:
            srv.start()
            print(f"{srv.name}: https://127.0.0.1:{srv.port}/ pid {srv.proc.pid}, "
                  f"{tls_info(srv.port)}, RSS at start {proc_status(srv.proc.pid, 'VmRSS'):.0f} "
                  f"MiB (peak {proc_status(srv.proc.pid, 'VmHWM'):.0f})", flush=True)
            work.prepare(srv)
        if not args.no_table:
            results = measure(servers, rows, work.run, args.repeat)
            print_table(results, servers, rows, args.repeat,
                        f"; Strongroom settings: {args.set or 'defaults'}",
                        peak_label="peak RSS, MiB (VmHWM; Apache: sum of procs)")
            if any(row.key == "put" for row in rows):  # the file the put row uploaded
                print(f"GET of the {big // MIB} MiB file, SHA-256: " + ", ".join(
                    f"{srv.name} {work.verify(srv)}" for srv in servers))
        if args.profile and sr in servers:
            profile(sr, work, rows, args)
        if args.large and sr in servers:
            large(sr, seed, tmp)
        sr.report_errors()


if __name__ == "__main__":
    main()
