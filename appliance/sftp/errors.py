"""The one table turning domain errors (and the adapter's own refusals) into SFTP
status codes."""
from paramiko.sftp import (SFTP_FAILURE, SFTP_NO_SUCH_FILE, SFTP_OP_UNSUPPORTED,
                           SFTP_PERMISSION_DENIED)

from strongroom.appliance import errors


class TooManyHandles(Exception):
    """An OPEN or OPENDIR while the session has as many handles open as it may."""


# First match wins: subclasses before their bases.
STATUS = (
    (TooManyHandles, SFTP_FAILURE),
    (errors.MissingParent, SFTP_NO_SUCH_FILE),
    (errors.NotFound, SFTP_NO_SUCH_FILE),
    (errors.Denied, SFTP_PERMISSION_DENIED),
    (errors.Unsupported, SFTP_OP_UNSUPPORTED),
    (errors.QuotaExceeded, SFTP_FAILURE),
    (errors.TooLarge, SFTP_FAILURE),
    (errors.Cancelled, SFTP_FAILURE),
    (errors.Busy, SFTP_FAILURE),      # a database contended past its retries: try again
    (errors.Locked, SFTP_FAILURE),    # "locked by another user: PATH"
    (errors.Conflict, SFTP_FAILURE),
    (errors.BadRequest, SFTP_FAILURE),
    (errors.CorruptData, SFTP_FAILURE),
    (errors.NoSpace, SFTP_FAILURE),
    (errors.StorageError, SFTP_FAILURE),
)

EXPECTED = tuple(cls for cls, _ in STATUS)


def status_for(exc: Exception | None) -> tuple[int, str]:
    """(SFTP status code, message for the client) for an error raised by the service
    layer; None (or any other error): an internal error."""
    for cls, code in STATUS:
        if isinstance(exc, cls):
            if isinstance(exc, errors.CorruptData):
                return code, "stored data failed its integrity check; not served"
            if isinstance(exc, errors.QuotaExceeded):
                return code, f"quota exceeded: {exc}"
            if isinstance(exc, errors.NoSpace):
                return code, "not enough free space on the server"
            return code, str(exc)
    return SFTP_FAILURE, "internal error"
