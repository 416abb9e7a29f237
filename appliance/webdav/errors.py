"""The WebDAV adapter's one error boundary: the table turning domain errors into
HTTP/DAV errors, and `boundary`, the class decorator that applies it once to
every method wsgidav calls on our objects (the tree, the resources, their
streams, the property and lock managers)."""
import functools
import inspect
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from wsgidav.dav_error import (HTTP_BAD_REQUEST, HTTP_CONFLICT, HTTP_FORBIDDEN,
                               HTTP_INTERNAL_ERROR, HTTP_LOCKED, HTTP_NOT_FOUND,
                               HTTP_NOT_IMPLEMENTED, HTTP_REQUEST_ENTITY_TOO_LARGE,
                               HTTP_SERVICE_UNAVAILABLE, DAVError)

from strongroom.appliance import errors
from strongroom.appliance.webdav.domain import current

log = logging.getLogger("strongroom.webdav")
HTTP_INSUFFICIENT_STORAGE = 507
C = TypeVar("C", bound=type)
R = TypeVar("R")
# Names the request for a log line, from the object and the arguments wsgidav called
# one of its methods with (a path, a token, ...; often None): printed with str().
What = Callable[..., object]

STATUS = (
    (errors.MissingParent, HTTP_CONFLICT),
    (errors.NotFound, HTTP_NOT_FOUND),
    (errors.Denied, HTTP_FORBIDDEN),
    (errors.Unsupported, HTTP_NOT_IMPLEMENTED),
    (errors.QuotaExceeded, HTTP_INSUFFICIENT_STORAGE),
    (errors.TooLarge, HTTP_REQUEST_ENTITY_TOO_LARGE),
    (errors.Cancelled, HTTP_SERVICE_UNAVAILABLE),
    (errors.Busy, HTTP_SERVICE_UNAVAILABLE),
    (errors.Locked, HTTP_LOCKED),
    (errors.Conflict, HTTP_CONFLICT),
    (errors.BadRequest, HTTP_BAD_REQUEST),
    (errors.CorruptData, HTTP_INTERNAL_ERROR),
    (errors.NoSpace, HTTP_INSUFFICIENT_STORAGE),
    (errors.StorageError, HTTP_INTERNAL_ERROR),
)
EXPECTED = tuple(cls for cls, _ in STATUS)


def to_dav(exc: Exception) -> DAVError:
    for cls, code in STATUS:
        if isinstance(exc, cls):
            text = ("stored data failed its integrity check; not served"
                    if isinstance(exc, errors.CorruptData) else str(exc))
            return DAVError(code, context_info=text)
    return DAVError(HTTP_INTERNAL_ERROR)


def boundary(what: What) -> Callable[[C], C]:
    """Class decorator: each public method of the class (its own, not inherited) lets
    domain errors leave only as the DAVError of the table, after one log line.
    `what(obj, *args)` names the request for that line (args: the method's)."""
    def decorate(cls: C) -> C:
        for name, member in list(vars(cls).items()):
            if not name.startswith("_") and inspect.isfunction(member):
                setattr(cls, name, _guarded(member, what))
        return cls
    return decorate


def _guarded(method: Callable[..., R], what: What) -> Callable[..., R]:
    # the arguments are whatever wsgidav passes to the method wrapped
    @functools.wraps(method)
    def guarded(obj: object, *args: Any, **kwargs: Any) -> R:
        try:
            return method(obj, *args, **kwargs)
        except EXPECTED as e:
            raise logged(what(obj, *args), e) from None
    return guarded


def logged(what: object, exc: Exception) -> DAVError:
    """The DAVError for `exc`, after its one log line (the guard then logs no other)."""
    if not current.logged:
        current.logged = True
        log.info("webdav %r refused: %s: %s", str(what)[:200], type(exc).__name__, exc)
    return to_dav(exc)
