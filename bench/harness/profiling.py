"""py-spy profiles of the Strongroom daemon during a benchmark row, and their summary.

`Profiler.record` samples the daemon (`py-spy record --nonblocking`, raw collapsed
stacks that speedscope and inferno read; an SVG too if inferno-flamegraph or
flamegraph.pl is installed) while a row runs once. `summarize` prints the busy samples
by thread, by area (what the sampled source line does, else its innermost known
module: each protocol script passes its own tables), by function (self and inclusive)
and the hottest source lines.
"""
import collections
import linecache
import os
import re
import shutil
import signal
import subprocess
import time

from .procs import REPO

FRAME = re.compile(r"^(?P<func>.+?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")
WAIT_LEAVES = ("Condition.wait (threading.py", "Event.wait (threading.py",
               "EpollSelector.select (selectors.py", "socket.accept (socket.py",
               "Thread._wait_for_tstate_lock", "Queue.get (queue.py")
OWN = ("appliance/", "providers/", "auth/", "config/")


class Profiler:
    def __init__(self, out_dir: str, pid: int, rate: int, threads: bool):
        if shutil.which("py-spy") is None:
            raise SystemExit("py-spy not found: pip install py-spy")
        self.out_dir, self.pid, self.rate, self.threads = out_dir, pid, rate, threads
        os.makedirs(out_dir, exist_ok=True)

    def record(self, name: str, fn, gil: bool = False) -> tuple[float, str]:
        """Run fn() under py-spy; its figure and the raw stacks' path."""
        raw = os.path.join(self.out_dir, f"{name}{'-gil' if gil else ''}.txt")
        args = ["py-spy", "record", "--pid", str(self.pid), "--rate", str(self.rate),
                "--nonblocking", "--format", "raw", "-o", raw,
                *(["--threads"] if self.threads else []), *(["--gil"] if gil else [])]
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
        _flamegraph(raw, raw[:-4] + ".svg")
        return figure, raw


def _flamegraph(raw: str, svg: str) -> None:
    """py-spy writes one format per run; a flame graph needs flamegraph.pl, so the raw
    collapsed stacks are the primary output."""
    tool = shutil.which("inferno-flamegraph") or shutil.which("flamegraph.pl")
    if tool:
        with open(raw) as src, open(svg, "w") as dst:
            subprocess.run([tool], stdin=src, stdout=dst, timeout=120)


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


def source_line(path: str, lineno: int) -> str:
    """py-spy prints paths relative to the profiled process's cwd (REPO) or sys.path."""
    if not lineno:
        return ""
    if not os.path.isabs(path) and os.path.exists(os.path.join(REPO, path)):
        path = os.path.join(REPO, path)
    return linecache.getline(path, lineno)


class Areas:
    """How a protocol names where its samples go.

    leaf: (files, needles, label): the innermost frame is in one of `files` and its
      source line or function contains a needle (C calls have no frame of their own).
    modules: (key, label): else the innermost frame containing `key` decides.
    inclusive: the files whose functions get an inclusive share.
    busy_waits: a waiting leaf under one of these frames still counts as busy (the
      request thread waiting on the blob writer is part of a wall-time profile).
    """

    def __init__(self, modules, leaf=(), busy_waits=(), idle_frames=(), inclusive=OWN):
        self.modules, self.leaf, self.inclusive = modules, leaf, inclusive
        self.busy_waits, self.idle_frames = busy_waits, idle_frames

    def idle(self, stack: str, leaf: str) -> bool:
        if any(f in leaf for f in self.idle_frames):
            return True
        return leaf.startswith(WAIT_LEAVES) and not any(k in stack for k in self.busy_waits)

    def of(self, frames: list[str]) -> str:
        func, path, lineno = _frame(frames[-1])
        src = source_line(path, lineno)
        for files, needles, label in self.leaf:
            if any(f in path for f in files) and any(n in src or n in func for n in needles):
                return label
        for fr in reversed(frames):
            hit = next((label for key, label in self.modules if key in fr), None)
            if hit:
                return hit
        return "other"


# Where the samples go, by protocol
WEBDAV_AREAS = Areas(
    modules=(("sqlalchemy", "sqlalchemy"), ("sqlite3", "sqlalchemy"),
             ("appliance/db/", "sqlalchemy"), ("argon2", "argon2"),
             ("providers/", "providers (crypto/io)"), ("cryptography", "providers (crypto/io)"),
             ("appliance/", "appliance"), ("auth/", "auth"), ("ssl.py", "ssl"),
             ("cheroot", "cheroot"), ("wsgidav", "wsgidav"), ("logging", "logging"),
             ("threading.py", "threading/idle")),
    busy_waits=("wsgidav/", "appliance/", "providers/", "sqlalchemy"),
    inclusive=(*OWN, "wsgidav/", "cheroot/", "sqlalchemy/orm/session", "ssl.py"))

SFTP_AREAS = Areas(
    # what the innermost frame's own source line does, when that says more than its
    # module (C calls such as cipher updates, HMAC, hashing and syscalls have no frame)
    leaf=((("paramiko/packet.py",), ("block_engine",), "SSH cipher (paramiko -> cryptography)"),
          (("hmac.py", "paramiko/packet.py", "paramiko/util.py"),
           ("hmac", "HMAC", "compute_hmac", "constant_time", "digest"),
           "SSH MAC (HMAC per packet)"),
          (("paramiko/packet.py",), ("socket.recv",),
           "socket recv (transport thread; mostly waiting)"),
          (("paramiko/packet.py",), ("socket.send",), "socket send (replies, window adjusts)"),
          (("paramiko/buffered_pipe.py",), ("",), "paramiko BufferedPipe (channel receive buffer)"),
          (("providers/crypto.py",), ("",), "at-rest AES-GCM (providers/crypto)"),
          (("providers/streams.py",), ("_hash.update",), "at-rest SHA-256 of the plaintext"),
          (("providers/streams.py", "appliance/"), ("os.write", "fsync", "os.rename",
                                                    "_fsync_dir"), "blob file write/fsync")),
    modules=(("sqlalchemy", "DB (SQLAlchemy/sqlite)"), ("sqlite3", "DB (SQLAlchemy/sqlite)"),
             ("appliance/db/", "DB (SQLAlchemy/sqlite)"),
             ("providers/", "blob writer/reader (providers, Python)"),
             ("appliance/service/", "service layer (Session, Upload)"),
             ("appliance/sftp/", "SFTP handler/subsystem (appliance/sftp)"),
             ("appliance/", "appliance other"), ("auth/", "auth"),
             ("paramiko/packet.py", "paramiko packetizer (Python)"),
             ("paramiko/sftp_server.py", "paramiko SFTP server (parse/dispatch)"),
             ("paramiko/sftp_handle.py", "paramiko SFTP server (parse/dispatch)"),
             ("paramiko/sftp_attr.py", "paramiko SFTP server (parse/dispatch)"),
             ("paramiko/sftp.py", "paramiko SFTP framing (_read_packet/_send_packet)"),
             ("paramiko/message.py", "paramiko Message (parse/build)"),
             ("paramiko/channel.py", "paramiko channel (window, send/recv)"),
             ("paramiko/transport.py", "paramiko transport loop"),
             ("paramiko/", "paramiko other"), ("cryptography", "cryptography other"),
             ("logging", "logging"), ("threading.py", "threading")),
    idle_frames=("serve_forever (appliance", "accept (socket.py"))


def thread_role(frames: list[str]) -> str:
    joined = ";".join(frames)
    for key, role in (("sftp_server.py", "SFTP subsystem thread"),
                      ("appliance/sftp/subsystem", "SFTP subsystem thread"),
                      ("transport.py", "paramiko transport thread"),
                      ("ChunkedWriter._run", "blob writer thread"),
                      ("cheroot", "WebDAV"), ("wsgidav", "WebDAV")):
        if key in joined:
            return role
    return "other"


def summarize(raw: str, areas: Areas, top: int = 14) -> str:
    counts = {k: collections.Counter() for k in ("area", "func", "line", "thread", "incl")}
    total = idle = 0
    with open(raw) as f:
        for line in f:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            frames = [p for p in stack.split(";") if not p.startswith(("process ", "thread "))]
            if not count.isdigit() or not frames:
                continue
            if areas.idle(stack, frames[-1]):
                idle += int(count)
                continue
            total += int(count)
            _count(counts, frames, areas, int(count))
    if not total:
        return "  (no samples)"
    return "\n".join(_report(counts, total, idle, top, areas.inclusive))


def _count(counts: dict, frames: list[str], areas: Areas, n: int) -> None:
    func, path, lineno = _frame(frames[-1])
    counts["func"][f"{func} ({_short_path(path)})"] += n
    counts["line"][(path, lineno, func)] += n
    counts["thread"][thread_role(frames)] += n
    counts["area"][areas.of(frames)] += n
    for fn, fpath, _ in {_frame(fr) for fr in frames}:
        if _short_path(fpath).startswith(areas.inclusive):
            counts["incl"][f"{fn} ({_short_path(fpath)})"] += n


def _report(counts: dict, total: int, idle: int, top: int, inclusive) -> list[str]:
    def share(counter, n=None):
        return [f"    {v / total:6.1%}  {k}" for k, v in counter.most_common(n)]

    out = [f"  {total} busy samples ({idle} of idle or waiting workers dropped)",
           "  by thread: " + ", ".join(f"{k} {v / total:.0%}"
                                       for k, v in counts["thread"].most_common()),
           "  by area (what the sampled line does, else its innermost known module):",
           *share(counts["area"]), "  self time by function:", *share(counts["func"], top)]
    if counts["incl"]:
        out += [f"  inclusive, functions in {', '.join(inclusive)}:", *share(counts["incl"], top)]
    out.append("  hottest source lines:")
    for (path, lineno, func), v in counts["line"].most_common(top):
        src = source_line(path, lineno).strip()[:70]
        out.append(f"    {v / total:6.1%}  {_short_path(path)}:{lineno} {func}: {src}")
    return out
