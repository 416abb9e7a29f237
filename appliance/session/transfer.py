"""Streams in and out of the store on behalf of a Session.

An `Upload` builds a new version. Writes in order stream straight into a new
blob; a gap is filled from the previous version (when the upload continues an
existing file: resume, append) or with zeros. The first write before the
current end switches the upload to random access (appliance.session.overlay).
Any failed write (quota, disk) discards the upload, and a later commit says so:
a file with a hole or a missing part never becomes a version. The version
becomes visible only in `commit()`: blob fsynced first, then one database
transaction.
"""
from appliance.errors import Conflict, QuotaExceeded, StrongroomError
from appliance.session.overlay import Layered, Overlay

COPY_BLOCK = 1024 * 1024


class MissingParent(Conflict):
    """The folder a new entry would go into does not exist."""


class ReadHandle:
    """An open version: `read(offset, size)` decrypts only the chunks it touches."""

    def __init__(self, entry, reader):
        self.entry = entry
        self._reader = reader

    def read(self, offset: int, size: int) -> bytes:
        return self._reader.read(offset, size)

    def iter_range(self, start: int, end: int, block: int):
        """Yield the bytes [start, end) in blocks of at most `block` bytes."""
        pos = start
        while pos < end:
            data = self._reader.read(pos, min(block, end - pos))
            if not data:
                return
            pos += len(data)
            yield data

    def close(self) -> None:
        self._reader.close()


class Upload:
    """One new version being written; see the module docstring for the rules."""

    def __init__(self, session, target, make_writer, base, quota):
        self._session, self._target = session, target
        self._make_writer = make_writer
        self._writer, self._wrapped = make_writer()
        self._base, self._base_size = base if base else (None, 0)
        self._overlay: Overlay | None = None
        self._quota = quota
        self._done = False
        self.mtime: float | None = None
        self.entry = None

    @property
    def size(self) -> int:
        """Bytes the version will have if committed now."""
        if self._overlay is not None:
            return self._overlay.size
        return max(self._writer.size, self._base_size)

    @property
    def position(self) -> int:
        """Bytes received in order so far (for a stream: its length)."""
        return self._overlay.size if self._overlay is not None else self._writer.size

    def append(self, data) -> None:
        self.write(self.position, data)

    def write(self, offset: int, data) -> None:
        if self._done:
            raise Conflict("the upload is closed or was discarded after an error")
        try:
            self._check_quota(offset + len(data))
            if self._overlay is None and offset < self._writer.size:
                self._go_random()
            if self._overlay is not None:
                self._overlay.write(offset, data)
                return
            if offset > self._writer.size:
                self._fill(offset)
            self._writer.write(data)
        except BaseException:
            self.abort()  # a file with a hole or a missing tail must not become a version
            raise

    def _go_random(self) -> None:
        """Switch from streaming to random access (see appliance.session.overlay)."""
        streamed = self._writer.size
        first = self._writer.reopen_for_reading()
        base = Layered(first, streamed, self._base, self._base_size)
        self._base = None  # now owned by the overlay
        provider = self._session.app.provider
        self._overlay = Overlay(base, max(streamed, self._base_size), provider.create_scratch(),
                                provider.chunk_size)

    def _check_quota(self, end: int) -> None:
        if self._quota is not None and end > self._quota:
            raise QuotaExceeded("the client's quota is exhausted")

    def _fill(self, upto: int) -> None:
        """Copy the previous version up to `upto`, then zeros (a sparse write)."""
        while self._writer.size < upto:
            pos = self._writer.size
            n = min(COPY_BLOCK, upto - pos)
            data = self._base.read(pos, n) if self._base and pos < self._base_size else b""
            self._writer.write(data or bytes(n))

    def _finish_stream(self) -> None:
        """Make the writer hold the complete content."""
        if self._overlay is None:
            self._fill(self._base_size)
            return
        self._writer, self._wrapped = self._make_writer()
        for block in self._overlay.blocks():
            self._writer.write(block)
        self._overlay.close()
        self._overlay = None

    def commit(self):
        """Publish the version; returns its Entry. Aborts (and re-raises) on any failure."""
        if self._done:
            if self.entry is None:
                raise Conflict("the upload failed earlier and was discarded; nothing was saved")
            return self.entry
        try:
            self._check_quota(self.size)
            self._finish_stream()
            self._close_base()
            self._writer.commit()
        except BaseException:
            self.abort()
            raise
        self._done = True
        try:
            self.entry = self._session._commit_upload(self._target, self._writer,
                                                      self._wrapped, self.mtime)
        except BaseException:
            self._session.app.provider.delete_blob(self._writer.blob_id)
            raise
        return self.entry

    def abort(self) -> None:
        """Drop the upload; the previous version stays current. Safe to call twice."""
        if not self._done:
            self._done = True
            self._close_base()
            if self._overlay is not None:
                self._overlay.close()
                self._overlay = None
            self._writer.abort()

    def _close_base(self) -> None:
        if self._base is not None:
            self._base.close()
            self._base = None


__all__ = ["COPY_BLOCK", "MissingParent", "ReadHandle", "Upload", "StrongroomError"]
