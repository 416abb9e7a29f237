"""DAV resources over the Session: every method is one service call; domain errors
become DAV errors at the one boundary (webdav.errors.boundary) on each class."""
import email.utils
import logging
import mimetypes
from typing import TYPE_CHECKING
from urllib.parse import quote
from wsgiref.types import WSGIEnvironment

from wsgidav.dav_error import HTTP_BAD_REQUEST, DAVError
from wsgidav.dav_provider import DAVCollection, DAVNonCollection

from strongroom.appliance.errors import Conflict, StorageError
from strongroom.appliance.service.entry import Entry
from strongroom.appliance.service.transfer import ReadHandle, Upload
from strongroom.appliance.webdav.errors import boundary

if TYPE_CHECKING:
    from strongroom.appliance.service import Session

log = logging.getLogger("strongroom.webdav")


def _timestamp(value: object) -> float | None:
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value or "").strip()
    if text.replace(".", "", 1).isdigit():
        return float(text)
    try:
        return email.utils.parsedate_to_datetime(text).timestamp()
    except (TypeError, ValueError):
        return None


def _child(path: str, name: str) -> str:
    return path.rstrip("/") + "/" + name


def _request(resource: "_Common", *_: object) -> str:
    return f"{resource.environ.get('REQUEST_METHOD', '?')} {resource.path}"


@boundary(_request)
class _Common:
    # Set by wsgidav's resource class (DAVNonCollection, DAVCollection), mixed in after
    # this one: the request path, the request, and the last segment of the path.
    path: str
    environ: WSGIEnvironment
    name: str
    if TYPE_CHECKING:   # wsgidav's, inherited: declared here only for mypy
        def remove_all_locks(self, *, recursive: bool) -> None: ...

    def _init(self, environ: WSGIEnvironment, entry: Entry | None) -> None:
        self.session: Session = environ["strongroom.session"]
        self.entry = entry

    def get_creation_date(self) -> float | None:
        return self.entry.ctime or None if self.entry else None

    def get_last_modified(self) -> float | None:
        return self.entry.mtime or None if self.entry else None

    def get_display_name(self) -> str:
        return self.name

    def get_used_bytes(self) -> int:
        return self._usage()[0]

    def get_available_bytes(self) -> int | None:
        used, quota = self._usage()
        return None if quota is None else max(0, quota - used)

    def _usage(self) -> tuple[int, int | None]:
        """The tree's (used, quota), read once per request and top-level name: a Depth-1
        PROPFIND asks it of every member, and they are all in the same tree."""
        memo: dict[str, tuple[int, int | None]] = self.environ.setdefault(
            "strongroom.usage", {})
        top = self.path.strip("/").split("/", 1)[0]
        if top not in memo:
            memo[top] = self.session.usage(self.path)
        return memo[top]

    def support_recursive_move(self, dest_path: str) -> bool:
        return True

    def move_recursive(self, dest_path: str) -> None:
        # wsgidav has answered 412 already if the destination exists and Overwrite is
        # F; what it left in place (see delete) is replaced by the move itself: a file
        # as a new version, a folder once the moved one is complete
        overwrite = self.environ.get("HTTP_OVERWRITE", "T").upper() != "F"
        self.session.rename(self.path, dest_path, overwrite=overwrite, replace=True)

    def delete(self) -> None:
        """wsgidav deletes an existing destination before a MOVE; the move replaces it
        itself, in one step, so that a move that fails leaves it as it was."""
        if self._is_move_destination():
            return
        self.session.remove(self.path, recursive=True)
        self.remove_all_locks(recursive=True)

    def _is_move_destination(self) -> bool:
        return self.environ.get("REQUEST_METHOD") == "MOVE" and \
            self.path != self.environ.get("PATH_INFO")

    def set_last_modified(self, dest_path: str, time_stamp: object, *, dry_run: bool) -> bool:
        """X-OC-Mtime (epoch seconds) or Win32LastModifiedTime (an RFC 1123 date)."""
        mtime = _timestamp(time_stamp)
        if mtime is None:
            raise DAVError(HTTP_BAD_REQUEST, context_info="unreadable modification time")
        if not dry_run:
            self.session.set_mtime(dest_path, mtime)
        return True


# wsgidav ships no types: its resource classes are Any to mypy.
@boundary(_request)
class FileResource(_Common, DAVNonCollection):  # type: ignore[misc]
    """A file; `entry` is None for a file being created by PUT (not visible yet)."""

    def __init__(self, path: str, environ: WSGIEnvironment, entry: Entry | None) -> None:
        DAVNonCollection.__init__(self, path, environ)
        self._init(environ, entry)
        self._upload: Upload | None = None

    def get_content_length(self) -> int:
        return self.entry.size if self.entry else 0

    def get_content_type(self) -> str:
        return mimetypes.guess_type(self.name)[0] or "application/octet-stream"

    def get_etag(self) -> str | None:
        return self.entry.etag if self.entry else None

    def support_etag(self) -> bool:
        return True

    def support_ranges(self) -> bool:
        return True

    def finalize_headers(self, environ: WSGIEnvironment,
                         response_headers: list[tuple[str, str]]) -> None:
        """A GET or HEAD of a file is an attachment: a browser saves it, never shows
        it as a page of this origin (which types a browser renders depends on the
        browser and on the host's MIME table, so there is no list of safe ones)."""
        response_headers.append(("Content-Disposition", attachment(self.name)))

    def get_content(self) -> "ReadStream":
        # The version stat'ed at the start of the request, not the current one: wsgidav
        # has announced its size and ETag, and picked the Range against them, already.
        version_id = self.entry.version_id if self.entry else None
        return ReadStream(self.session.open_read(self.path, version_id))

    def begin_write(self, *, content_type: str | None = None) -> "UploadStream":
        # An announced length that cannot fit is refused before the body is read.
        length = self.environ.get("CONTENT_LENGTH", "")
        self._upload = self.session.open_write(
            self.path, size=int(length) if length.isdigit() else None)
        return UploadStream(self._upload)

    def end_write(self, *, with_errors: bool) -> None:
        if self._upload is None:
            return
        upload, self._upload = self._upload, None
        if with_errors:
            upload.abort()
            return
        # A body cut short by a dropped connection reads as a normal end of body:
        # only the announced length tells the two apart.
        expected = self.environ.get("CONTENT_LENGTH")
        if expected and expected.isdigit() and int(expected) != upload.position:
            upload.abort()
            log.info("webdav PUT %s: body ended after %d of %s bytes; discarded",
                     self.path, upload.position, expected)
            raise DAVError(HTTP_BAD_REQUEST, context_info="incomplete request body")
        self.entry = upload.commit()

    def delete(self) -> None:
        """wsgidav deletes an existing destination before COPY or MOVE with Overwrite.
        The move, or the copy of a file onto this file, replaces it instead: as a new
        version, so the file keeps its history (and a version of it can be copied
        over it to restore it)."""
        if self.environ.get("REQUEST_METHOD") == "COPY" and \
                self.path != self.environ.get("PATH_INFO") and self._source_is_file():
            return
        super().delete()

    def _source_is_file(self) -> bool:
        return not self.session.stat(self.environ["PATH_INFO"]).is_dir

    def copy_move_single(self, dest_path: str, *, is_move: bool) -> None:
        if is_move:
            self.session.rename(self.path, dest_path, overwrite=True, replace=True)
        else:
            self.session.copy(self.path, dest_path, overwrite=True)
            self.session.copy_dead_properties(self.path, dest_path)


@boundary(_request)
class FolderResource(_Common, DAVCollection):  # type: ignore[misc]  # (see FileResource)
    def __init__(self, path: str, environ: WSGIEnvironment, entry: Entry) -> None:
        DAVCollection.__init__(self, path, environ)
        self._init(environ, entry)

    def get_etag(self) -> None:
        return None

    def get_member_names(self) -> list[str]:
        return [e.name for e in self.session.list(self.path)]

    def get_member_list(self) -> "list[FileResource | FolderResource]":
        entries = self.session.list(self.path)
        return [make_resource(_child(self.path, e.name), self.environ, e) for e in entries]

    def get_member(self, name: str) -> "FileResource | FolderResource":
        entry = self.session.stat(_child(self.path, name))
        return make_resource(_child(self.path, name), self.environ, entry)

    def create_empty_resource(self, name: str) -> FileResource:
        path = _child(self.path, name)
        if self.environ.get("REQUEST_METHOD") != "LOCK":
            return FileResource(path, self.environ, None)  # PUT: visible once written
        # lock-null: an empty file the client then writes
        upload = self.session.open_write(path)
        return FileResource(path, self.environ, upload.commit())

    def create_collection(self, name: str) -> None:
        self.session.mkdir(_child(self.path, name))

    def support_recursive_delete(self) -> bool:
        return True

    def copy_move_single(self, dest_path: str, *, is_move: bool) -> None:
        """Create the destination folder (COPY onto an existing folder merges into it:
        wsgidav has already removed what the source does not have)."""
        try:
            self.session.mkdir(dest_path)
        except Conflict:
            if not self.session.stat(dest_path).is_dir:
                raise
        self.session.copy_dead_properties(self.path, dest_path)


def attachment(name: str) -> str:
    """Content-Disposition for a download named `name` (RFC 6266, with the RFC 5987
    UTF-8 form and a plain ASCII fallback)."""
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in name)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def make_resource(path: str, environ: WSGIEnvironment,
                  entry: Entry) -> FileResource | FolderResource:
    if entry.is_dir:
        return FolderResource(path, environ, entry)
    return FileResource(path, environ, entry)


@boundary(lambda stream, *_: "GET (body)")
class ReadStream:
    """The file-like object wsgidav reads a GET body from (seek for Range requests)."""

    def __init__(self, handle: ReadHandle) -> None:
        self._h = handle
        self._pos = 0

    def seek(self, pos: int, whence: int = 0) -> None:
        self._pos = pos if whence == 0 else (self._pos + pos if whence == 1
                                             else self._h.entry.size + pos)

    def tell(self) -> int:
        return self._pos

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            size = self._h.entry.size - self._pos
        data = self._h.read(self._pos, size)
        if not data and size > 0 and self._pos < self._h.entry.size:
            # wsgidav takes b"" for the end of the body and would leave the client
            # waiting for the rest of the Content-Length: an error ends the connection.
            raise StorageError(f"{self._h.entry.path}: no data at {self._pos} "
                               f"of {self._h.entry.size} bytes")
        self._pos += len(data)
        return data

    def close(self) -> None:
        self._h.close()


@boundary(lambda stream, *_: "PUT (body)")
class UploadStream:
    """The file-like object wsgidav writes a PUT body into; commit happens in end_write."""

    def __init__(self, upload: Upload) -> None:
        self._u = upload

    def write(self, data: bytes) -> None:
        self._u.append(data)

    def close(self) -> None:
        pass
