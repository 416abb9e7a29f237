"""Streams in and out of the store on behalf of a Session.

An `Upload` builds a new version as a sequential stream: writes must come at
or after the current end. A gap is filled from the previous version (when the
upload continues an existing file: resume, append) or with zeros. A write
before the current end raises Unsupported, because the encrypted chunks already
written cannot be changed in place; sequential and resumed uploads, which is
what SFTP and WebDAV clients send, never do that. The version becomes visible
only in `commit()`: blob fsynced first, then one database transaction.
"""
from appliance.errors import Conflict, QuotaExceeded, StrongroomError, Unsupported

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

    def __init__(self, session, target, writer, wrapped_key, base, quota):
        self._session, self._target = session, target
        self._writer, self._wrapped = writer, wrapped_key
        self._base, self._base_size = base if base else (None, 0)
        self._quota = quota
        self._done = False
        self.mtime: float | None = None
        self.entry = None

    @property
    def size(self) -> int:
        """Bytes the version will have if committed now."""
        return max(self._writer.size, self._base_size)

    @property
    def position(self) -> int:
        return self._writer.size

    def append(self, data) -> None:
        self.write(self._writer.size, data)

    def write(self, offset: int, data) -> None:
        if self._done:
            raise Conflict("the upload is closed or was discarded after an error")
        try:
            pos = self._writer.size
            if offset < pos:
                raise Unsupported(f"write at {offset} is before the end of the upload ({pos}); "
                                  "rewriting an uploaded part is not supported")
            self._check_quota(offset + len(data))
            if offset > pos:
                self._fill(offset)
            self._writer.write(data)
        except BaseException:
            self.abort()  # a file with a hole or a missing tail must not become a version
            raise

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

    def commit(self):
        """Publish the version; returns its Entry. Aborts (and re-raises) on any failure."""
        if self._done:
            if self.entry is None:
                raise Conflict("the upload failed earlier and was discarded; nothing was saved")
            return self.entry
        try:
            self._check_quota(self.size)
            self._fill(self._base_size)
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
            self._writer.abort()

    def _close_base(self) -> None:
        if self._base is not None:
            self._base.close()
            self._base = None


__all__ = ["COPY_BLOCK", "MissingParent", "ReadHandle", "Upload", "StrongroomError"]
