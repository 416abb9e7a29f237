"""The domain errors every adapter translates once, in one table, at its edge."""
from strongroom.providers.errors import CorruptData, NoSpace, StorageError


class StrongroomError(Exception):
    """Base of all errors the service layer raises on purpose."""


class NotFound(StrongroomError):
    pass


class Hidden(NotFound):
    """The path is outside what the principal may see: answered as NotFound, and
    audited as a refused probe."""


class Denied(StrongroomError):
    pass


class Conflict(StrongroomError):
    """The target exists, is not empty, is of the wrong kind, or a parent is missing."""


class MissingParent(Conflict):
    """The folder a new entry would go into does not exist."""


class ConcurrentChange(Conflict):
    """Another transaction changed the same names first (a unique index fired)."""


class Locked(Conflict):
    """A WebDAV lock held by another user covers the path (appliance.service.locking):
    a write there is refused until the lock is released or expires. A Conflict to an
    adapter that does not name it."""


class QuotaExceeded(StrongroomError):
    pass


class TooLarge(StrongroomError):
    """The file would grow past [storage] max_file_size."""


class Cancelled(StrongroomError):
    """An upload was stopped from outside (its connection is gone); nothing was saved."""


class AuthFailed(StrongroomError):
    pass


class BadRequest(StrongroomError):
    """A malformed path or argument."""


class Unavailable(StrongroomError):
    """Something the appliance needs to start is missing or taken: a file, a port,
    the database, the data directory's lock."""


class Busy(Unavailable):
    """The database stayed contended (a deadlock or serialization failure after the
    retries, a lock SQLite's busy timeout did not get): nothing was changed; the
    client may try again (503 over WebDAV)."""


class Unsupported(StrongroomError):
    """A valid request the store cannot honour (e.g. a write before the end of an upload)."""


__all__ = ["StrongroomError", "NotFound", "Hidden", "Denied", "Conflict", "MissingParent",
           "ConcurrentChange", "Locked", "QuotaExceeded", "TooLarge", "Cancelled", "AuthFailed",
           "BadRequest", "Unavailable", "Busy", "Unsupported", "CorruptData", "NoSpace",
           "StorageError"]
