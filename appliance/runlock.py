"""One daemon per data directory: the lock file DATA/strongroom.pid.

`strongroom serve` takes an exclusive flock(2) on the file before it touches
anything in the data directory and holds it until it exits (the kernel lets go
when the process dies, however it dies, so a stale file never blocks a start).
The file says who holds it: PID, start time, version and ports, as JSON, for the
second `serve` (one line naming the PID) and for `strongroom status`.
"""
import fcntl
import json
import os
import time
from pathlib import Path
from typing import Any

from strongroom.appliance.errors import Unavailable

NAME = "strongroom.pid"


class AlreadyServing(Unavailable):
    """Another process serves this data directory."""


class RunLock:
    """The held lock; `update()` adds facts (ports) once they are known."""

    def __init__(self, data_dir: Path):
        self.path = Path(data_dir) / NAME
        self._fd: int | None = None
        self._facts: dict[str, Any] = {}    # JSON values

    def acquire(self, version: str) -> "RunLock":
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        for _ in range(20):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                facts = holder(self.path.parent)
                if facts and facts.get("pid"):
                    os.close(fd)
                    raise AlreadyServing(
                        f"{self.path.parent} is already served by PID {facts['pid']} "
                        f"(lock file {self.path}); stop that daemon first") from None
                # held for a moment by `status` looking, or by a daemon starting
                time.sleep(0.1)
        else:
            os.close(fd)
            raise AlreadyServing(f"{self.path.parent} is locked by another process "
                                 f"(lock file {self.path})")
        self._fd = fd
        self.update(pid=os.getpid(), started_at=time.time(), version=version)
        return self

    def update(self, **facts: Any) -> None:
        assert self._fd is not None, "update() of a lock not acquired"
        self._facts.update(facts)
        data = json.dumps(self._facts).encode() + b"\n"
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, data, 0)

    def release(self) -> None:
        """Say nobody serves any more, then let go (the file itself stays: removing it
        would let a third process lock a new file while a second still waits on this)."""
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.close(self._fd)
            self._fd = None


def holder(data_dir: Path) -> dict[str, Any] | None:
    """What the daemon serving `data_dir` wrote in its lock file, or None if no
    process holds the lock."""
    try:
        fd = os.open(Path(data_dir) / NAME, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _facts(os.pread(fd, 4096, 0))
        return None
    finally:
        os.close(fd)


_TYPES: dict[str, type | tuple[type, ...]] = {"pid": int, "started_at": (int, float), "version": str, "host": str,
          "webdav_port": int, "sftp_port": int}


def _facts(data: bytes) -> dict[str, Any]:
    """The facts of a lock file, only those of the expected types (the file may have
    been taken a moment ago and be empty, or have been edited by hand)."""
    try:
        facts = json.loads(data or b"{}")
    except ValueError:
        return {}
    if not isinstance(facts, dict):
        return {}
    return {k: v for k, v in facts.items()
            if k in _TYPES and isinstance(v, _TYPES[k]) and not isinstance(v, bool)}
