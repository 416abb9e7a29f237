"""Storage providers. `load(config)` returns the provider the config names."""
from providers.base import BlobReader, BlobWriter, Capabilities, StorageProvider
from providers.errors import CorruptData, NoSpace, StorageError


def load(config) -> StorageProvider:
    from providers.local import LocalProvider
    return LocalProvider(config.storage.blob_dir, config.storage.chunk_size)


__all__ = ["BlobReader", "BlobWriter", "Capabilities", "StorageProvider",
           "CorruptData", "NoSpace", "StorageError", "load"]
