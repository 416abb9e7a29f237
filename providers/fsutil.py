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
