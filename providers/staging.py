"""Who owns a staging file: the process that holds an flock(2) on it.

Every file in the staging area (an upload in progress, scratch data of a
random-access upload, an unpublished upload being read back) is held under a
lock by the process using it, for as long as it uses it. A cleaner (the
daemon's start, `doctor --repair`) removes only files nobody holds: leftovers
of a process that died, never the upload of a daemon or CLI command still
running (the kernel drops the locks of a process however it ends).
"""
import fcntl
import os
from pathlib import Path


def hold(fd: int, *, shared: bool = False) -> None:
    """Mark the open staging file `fd` as in use by this process."""
    fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)


def take_if_abandoned(path: Path) -> int | None:
    """An open descriptor of `path`, holding it, if no process held it; None if one
    does or it is gone. Until the caller closes it, no other cleaner takes it."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        # its owner may have removed it between our open and its last close
        if os.stat(path).st_ino != os.fstat(fd).st_ino:
            raise FileNotFoundError(path)
    except (BlockingIOError, FileNotFoundError):
        os.close(fd)
        return None
    return fd


def remove_if_abandoned(path: Path) -> bool:
    """Unlink `path` if no process holds it; True if it was removed (or is gone)."""
    fd = take_if_abandoned(path)
    if fd is None:
        return not path.exists()
    try:
        unlink(path)    # still locked by us: its owner cannot be starting to use it
        return True
    finally:
        os.close(fd)


def unlink(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
