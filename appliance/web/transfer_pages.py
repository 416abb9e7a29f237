"""What the portal streams: downloads (Range, always as an attachment), a folder as
one zip (ZIP64, written as it is sent, no copy of the folder anywhere), and
uploads of several files in one multipart form, each streamed into a Session
upload that commits only when its part is complete.

Memory does not grow with file size: every body moves in BLOCK-sized pieces."""
import datetime
import io
import logging
import posixpath
import zipfile
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import multipart  # type: ignore[import-untyped]

from strongroom.appliance.errors import BadRequest, Denied, StrongroomError
from strongroom.appliance.service import Session
from strongroom.appliance.service.entry import Entry
from strongroom.appliance.service.transfer import ReadHandle, Upload
from strongroom.appliance.web.http import Response, content_disposition, json_response, \
    redirect, url
from strongroom.appliance.web.portal import Context
from strongroom.appliance.webdav.listener import close_after_response

if TYPE_CHECKING:
    from typing_extensions import Buffer

    from strongroom.appliance.web.portal import Portal

log = logging.getLogger("strongroom.web")
BLOCK = 1024 * 1024
MAX_FIELD = 4096                 # a form field of an upload (its token)
MAX_PARTS = 100_001             # files in one upload form, and its token
Lister = Callable[[str], list[Entry]]   # the entries of a folder
DOWNLOAD_HEADERS = [("Content-Security-Policy", "sandbox"),
                    ("X-Content-Type-Options", "nosniff"), ("Cache-Control", "private, no-cache")]


def register(portal: "Portal") -> None:
    @portal.route("GET", "/download")
    def download(ctx: Context) -> Response:
        from strongroom.appliance.web.file_pages import _path
        version = ctx.request.query.get("v")
        if version is not None and (not version.isdigit() or len(version) > 18):
            raise BadRequest("no such version")
        handle = ctx.session.open_read(_path(ctx), int(version) if version else None)
        try:
            return _send(ctx, handle)
        except BaseException:
            handle.close()
            raise

    @portal.route("GET", "/zip")
    def zip_folder(ctx: Context) -> Response:
        from strongroom.appliance.web.file_pages import _is_view, _path
        path = _path(ctx)
        if not ctx.session.stat(path).is_dir:
            raise BadRequest("not a folder")
        name = (posixpath.basename(path.rstrip("/")) or "files") + ".zip"
        session = ctx.session

        def entries(p: str) -> list[Entry]:
            return [e for e in session.list(p) if not _is_view(ctx, e)]
        return Response(200, _zip_stream(session, path, entries),
                        DOWNLOAD_HEADERS + [("Content-Disposition", content_disposition(name))],
                        "application/zip")

    @portal.route("POST", "/upload")
    def upload(ctx: Context) -> Response:
        from strongroom.appliance.web.file_pages import _path
        folder = _path(ctx)
        names = _receive(ctx, folder)
        if ctx.request.wants_json():
            return json_response({"uploaded": names})
        return redirect(url("/files", p=folder))


# -- downloads --------------------------------------------------------------------

def _send(ctx: Context, handle: ReadHandle) -> Response:
    entry = handle.entry
    size = entry.size
    headers = DOWNLOAD_HEADERS + [
        ("Content-Disposition", content_disposition(entry.name)), ("Accept-Ranges", "bytes"),
        ("ETag", f'"{entry.etag}"'),
        ("Last-Modified", datetime.datetime.fromtimestamp(entry.mtime, datetime.timezone.utc)
         .strftime("%a, %d %b %Y %H:%M:%S GMT"))]
    wanted = ctx.request.header("Range")
    if_range = ctx.request.header("If-Range")
    if wanted and (not if_range or if_range.strip() == f'"{entry.etag}"'):
        span = _range(wanted, size)
        if span is None:
            handle.close()
            return Response(416, [b""], headers + [("Content-Range", f"bytes */{size}"),
                                                   ("Content-Length", "0")],
                            "application/octet-stream")
        if span != (0, size):
            start, end = span
            return Response(206, _body(handle, start, end, ctx.request.method),
                            headers + [("Content-Range", f"bytes {start}-{end - 1}/{size}"),
                                       ("Content-Length", str(end - start))],
                            "application/octet-stream")
    return Response(200, _body(handle, 0, size, ctx.request.method),
                    headers + [("Content-Length", str(size))], "application/octet-stream")


def _range(header: str, size: int) -> tuple[int, int] | None:
    """(start, end) of one `bytes=` range, the whole file for what is not one range
    (several ranges are answered whole, as RFC 9110 allows), None if unsatisfiable."""
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return 0, size
    first, dash, last = spec.strip().partition("-")
    if not dash or not (first.isdigit() or last.isdigit()) or \
            (first and not first.isdigit()) or (last and not last.isdigit()):
        return 0, size
    if not first:
        start, end = max(0, size - int(last)), size
    elif last and int(last) < int(first):
        return 0, size                   # not a valid range: ignored (RFC 9110 14.2)
    else:
        start, end = int(first), min(size, int(last) + 1) if last else size
    if start >= size or start >= end:
        return None
    return start, end


def _body(handle: ReadHandle, start: int, end: int, method: str) -> Iterator[bytes]:
    try:
        if method != "HEAD":
            yield from handle.iter_range(start, end, BLOCK)
    except StrongroomError as e:       # the status is sent: the connection ends short
        log.warning("web: download of %s stopped: %s", handle.entry.path, e)
        close_after_response()
    finally:
        handle.close()


# -- a folder as a zip ----------------------------------------------------------------

class _Sink(io.RawIOBase):
    """A write-only stream zipfile writes into; what it wrote is taken by `drain`."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._pos = 0

    def writable(self) -> bool:
        return True

    def write(self, data: "Buffer") -> int:
        part = bytes(data)
        self._parts.append(part)
        self._pos += len(part)
        return len(part)

    def tell(self) -> int:
        return self._pos

    def drain(self) -> Iterator[bytes]:
        parts, self._parts = self._parts, []
        yield from parts


def _zip_stream(session: Session, root: str, entries: Lister) -> Iterator[bytes]:
    sink = _Sink()
    try:
        with zipfile.ZipFile(sink, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
            for rel, entry in _walk(root, entries):
                info = zipfile.ZipInfo(rel + ("/" if entry.is_dir else ""), _zip_time(entry))
                if entry.is_dir:
                    zf.writestr(info, b"")
                    continue
                handle = session.open_read(entry.path)
                try:
                    with zf.open(info, "w", force_zip64=entry.size >= 2 ** 31) as out:
                        for block in handle.iter_range(0, handle.entry.size, BLOCK):
                            out.write(block)
                            yield from sink.drain()
                finally:
                    handle.close()
                yield from sink.drain()
        yield from sink.drain()
    except StrongroomError as e:
        log.warning("web: zip of %s stopped: %s", root, e)
        close_after_response()


def _walk(root: str, entries: Lister) -> Iterator[tuple[str, Entry]]:
    todo = [(root, "")]
    while todo:
        path, prefix = todo.pop()
        for entry in sorted(entries(path), key=lambda e: e.name):
            rel = f"{prefix}{entry.name}"
            yield rel, entry
            if entry.is_dir:
                todo.append((entry.path, rel + "/"))


def _zip_time(entry: Entry) -> tuple[int, int, int, int, int, int]:
    t = datetime.datetime.fromtimestamp(max(entry.mtime, 315532800), datetime.timezone.utc)
    return (t.year, t.month, t.day, t.hour, t.minute, t.second)


# -- uploads ------------------------------------------------------------------------------

def _receive(ctx: Context, folder: str) -> list[str]:
    """Store each file part of the multipart body in `folder`; the names stored."""
    from strongroom.appliance.web.file_pages import _name
    kind, options = multipart.parse_options_header(ctx.request.environ.get("CONTENT_TYPE", ""))
    boundary = options.get("boundary")
    if kind != "multipart/form-data" or not boundary:
        close_after_response()
        raise BadRequest("the upload is not a multipart form with a boundary")
    length = ctx.request.content_length
    body = ctx.request.environ["wsgi.input"]
    stored: list[str] = []
    token_ok = bool(ctx.request.header("X-CSRF-Token"))   # checked by the portal already
    field, current, name = bytearray(), None, None
    upload: Upload | None = None
    try:
        with multipart.PushMultipartParser(boundary, length if length is not None else -1,
                                           max_segment_count=MAX_PARTS) as parser:
            left = length if length is not None else -1
            while not parser.closed:
                chunk = body.read(BLOCK if left < 0 else min(BLOCK, left))
                if left >= 0:
                    left -= len(chunk)
                for event in parser.parse(chunk):
                    if isinstance(event, multipart.MultipartSegment):
                        current = event
                        if event.filename is not None and event.filename != "":
                            if not token_ok:
                                raise _NoToken()
                            name = _name(event.filename)
                            upload = ctx.session.open_write(posixpath.join(folder, name))
                        field.clear()
                    elif event is None:
                        if upload is not None and name is not None:
                            upload.commit()
                            stored.append(name)
                            upload = None
                        elif current is not None and current.name == "csrf":
                            token_ok = _token_matches(ctx, bytes(field))
                        current = None
                    elif upload is not None:
                        upload.append(event)
                    elif current is not None and current.filename is None:
                        if len(field) + len(event) > MAX_FIELD:
                            raise BadRequest("a form field of the upload is too long")
                        field += event
                if not chunk:
                    break
    except multipart.MultipartError as e:
        close_after_response()
        raise BadRequest(f"the upload was cut off or is not a valid form ({e})") from None
    except _NoToken:
        close_after_response()
        ctx.session.audit_event("csrf-refused", folder, "denied", "upload")
        raise Denied("this form was not sent from a page of this portal; reload the page "
                     "and try again") from None
    except BaseException:
        close_after_response()
        raise
    finally:
        if upload is not None:
            upload.abort()
    return stored


class _NoToken(Exception):
    """A file part came before a valid form token."""


def _token_matches(ctx: Context, sent: bytes) -> bool:
    import hmac
    return hmac.compare_digest(sent, ctx.csrf.encode())
