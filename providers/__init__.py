"""Storage providers. `load(config)` returns the provider the config names."""
from strongroom.providers.base import (BlobReader, BlobWriter, Capabilities, Scratch,
                                       StorageProvider)
from strongroom.providers.errors import CorruptData, NoSpace, StorageError


def load(config) -> StorageProvider:
    from strongroom.providers.local import LocalProvider
    return LocalProvider(config.storage.blob_dir, config.storage.chunk_size)


__all__ = ["BlobReader", "BlobWriter", "Capabilities", "Scratch", "StorageProvider",
           "CorruptData", "NoSpace", "StorageError", "load"]
