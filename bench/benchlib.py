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


def proc_status(pid: int, field: str) -> float:
    """A memory field of /proc/PID/status in MiB (nan if the process is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")
