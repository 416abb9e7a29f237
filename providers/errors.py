"""Errors a storage provider raises; the service layer lets them through as domain errors."""


class StorageError(Exception):
    """The store could not do what was asked (I/O error, disk full)."""


class CorruptData(StorageError):
    """Stored ciphertext failed authentication: tampered, truncated or reordered."""
