"""Helpers the benchmark scripts share (each runs as `python bench/NAME.py`, which
puts this folder on the import path)."""
import socket
import subprocess


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
