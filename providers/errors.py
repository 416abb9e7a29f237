"""Errors a storage provider raises; the service layer lets them through as domain errors."""
import errno
import os


class StorageError(Exception):
    """The store could not do what was asked (I/O error, disk full)."""


class CorruptData(StorageError):
    """Stored ciphertext failed authentication: tampered, truncated or reordered."""


class NoSpace(StorageError):
    """The file system holding the store is full (or the upload would eat its reserve)."""


# A full disk and an exhausted disk quota mean the same to a client: no room.
_FULL = {errno.ENOSPC, errno.EDQUOT}


def write_failed(what: str, e: OSError) -> StorageError:
    """The error for an OSError while writing `what`: NoSpace when the disk is full."""
    if e.errno in _FULL:
        return NoSpace("not enough free space on the server")
    return StorageError(f"cannot write {what}: {os.strerror(e.errno) if e.errno else e}")
