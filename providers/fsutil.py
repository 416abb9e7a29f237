"""Small file-system steps that durability needs, shared by the store and by the
appliance's own files (exports, backups, maintenance journals)."""
import os


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Make the entries of directory `path` (a file just created or renamed there)
    durable: fsync of the directory itself."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_new_private(path: str | os.PathLike[str], data: bytes) -> None:
    """A new file `path` of mode 0600 holding `data`, fsynced; FileExistsError (never
    over a file) or another OSError otherwise. Keys, sealed keys and their temp files."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
