"""Processes on this machine: free ports, commands, /proc counters, RSS samplers,
and the deterministic test files."""
import hashlib
import os
import socket
import subprocess
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
USER, PASSWORD = "bench", "Load-test-secret-42"
MIB, MB, GB = 1 << 20, 1e6, 1e9
CLK_TCK = os.sysconf("SC_CLK_TCK")


# -- processes ------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(*args, timeout=120, **kw) -> subprocess.CompletedProcess:
    """Run a command; exit with its first lines of error output if it fails."""
    p = subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kw)
    if p.returncode:
        raise SystemExit(f"{' '.join(map(str, args[:5]))} ... failed ({p.returncode}): "
                         f"{(p.stderr or p.stdout).strip()[:800]}")
    return p


def wait_port(port: int, timeout: float = 30, proc=None, banner: bytes = b"") -> None:
    """Until something accepts on `port` (and sends `banner` first, if given)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"server on port {port} exited with status {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.settimeout(2)
                if not banner or s.recv(len(banner)).startswith(banner):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"port {port} did not answer within {timeout:.0f} s")


def _proc_field(pid: int, name: str, field: str) -> int | None:
    """The number after 'FIELD:' in /proc/PID/NAME, or None if the process is gone."""
    try:
        with open(f"/proc/{pid}/{name}") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def proc_status(pid: int, field: str) -> float:
    """A memory field of /proc/PID/status in MiB (nan if the process is gone)."""
    kib = _proc_field(pid, "status", field)
    return float("nan") if kib is None else kib / 1024


def proc_io(pid: int, field: str) -> int:
    """A counter of /proc/PID/io (rchar: bytes read, wchar: bytes written), 0 if gone."""
    return _proc_field(pid, "io", field) or 0


def _stat(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def descendants(root: int) -> list[int]:
    """All live descendants of `root` (one pass over /proc)."""
    kids: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                kids.setdefault(int(_stat(int(name))[1]), []).append(int(name))
            except (OSError, IndexError, ValueError):
                pass
    out, todo = [], list(kids.get(root, ()))
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(kids.get(pid, ()))
    return out


def cpu_seconds(pids: list[int]) -> tuple[float, float]:
    """(user, system) CPU seconds of the processes, their reaped children included."""
    user = system = 0.0
    for pid in pids:
        try:
            fields = _stat(pid)
            user += (int(fields[11]) + int(fields[13])) / CLK_TCK
            system += (int(fields[12]) + int(fields[14])) / CLK_TCK
        except (OSError, IndexError, ValueError):
            pass
    return user, system


def reset_hwm(pid: int) -> bool:
    """Reset the peak RSS (VmHWM) of a process to its current RSS (Linux >= 4.0)."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class RssSampler(threading.Thread):
    """The largest VmRSS of one process while it runs (started and stopped by the caller)."""

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


class PeakSampler(threading.Thread):
    """Summed VmHWM of the processes a server uses during a row (they come and go)."""

    def __init__(self, srv, interval: float = 0.1):  # srv: a servers.Server
        super().__init__(daemon=True)
        self.srv, self.interval = srv, interval
        self.peaks: dict[int, float] = {}
        self._stop_event = threading.Event()

    def sample(self) -> None:
        for pid in self.srv.rss_pids():
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


# -- test data ------------------------------------------------------------------------

def pattern_block(i: int, seed: bytes) -> bytes:
    """Block i (1 MiB) of the deterministic test stream: cheap to make and to check."""
    return seed[:8] + i.to_bytes(8, "big") + seed[16:]


def make_file(path: str, size: int, seed: bytes) -> str:
    """A deterministic incompressible file of `size` bytes; returns its SHA-256."""
    h = hashlib.sha256()
    with open(path, "wb") as f:
        for i in range(size // MIB):
            block = pattern_block(i, seed)
            f.write(block)
            h.update(block)
        if size % MIB:
            f.write(seed[:size % MIB])
            h.update(seed[:size % MIB])
    return h.hexdigest()


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(MIB):
            h.update(block)
    return h.hexdigest()


def make_small_files(folder: str, count: int, size: int) -> list[str]:
    os.makedirs(folder)
    paths = [os.path.join(folder, f"f{i:04d}.bin") for i in range(count)]
    for path in paths:
        with open(path, "wb") as f:
            f.write(os.urandom(size))
    return paths


def code_version() -> str:
    """The commit benchmarked, and whether tracked files differ from it (read-only git)."""
    try:
        head = run("git", "-C", REPO, "rev-parse", "--short", "HEAD", timeout=10).stdout
        dirty = run("git", "-C", REPO, "status", "--porcelain", "--untracked-files=no",
                    timeout=10).stdout.splitlines()
    except (SystemExit, OSError, subprocess.TimeoutExpired):
        return "unknown"
    changed = [line[3:] for line in dirty if line.strip()]
    return head.strip() + (f" + uncommitted changes in {', '.join(changed)}" if changed else "")
