"""Storage providers: one module per backend, each with a `Provider` class that
implements providers.base.StorageProvider. `load(config)` returns the one
`[storage] backend` names."""
import importlib

from strongroom.config import Config

from strongroom.config import ConfigError
from strongroom.providers.base import (BlobReader, BlobWriter, Capabilities, Scratch,
                                       StorageProvider)
from strongroom.providers.errors import CorruptData, NoSpace, StorageError

BACKENDS = ("local",)


def load(config: Config) -> StorageProvider:
    """The provider of `config`; ConfigError (naming file and option) for an unknown one."""
    name = config.storage.backend
    if name not in BACKENDS:
        raise ConfigError(f"{config.path}: option storage.backend: unknown backend {name!r} "
                          f"(the backends: {', '.join(BACKENDS)})")
    module = importlib.import_module(f"strongroom.providers.{name}")
    provider: type[StorageProvider] = module.Provider   # each backend's class, by name
    return provider.from_config(config)


__all__ = ["BACKENDS", "BlobReader", "BlobWriter", "Capabilities", "Scratch",
           "StorageProvider", "CorruptData", "NoSpace", "StorageError", "load"]
