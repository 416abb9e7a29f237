"""Random-access writes over an upload's earlier content.

An upload streams into a new blob while writes arrive in order. The first write
before the current end (sshfs editing in place, a client re-sending a block)
switches it to an `Overlay`: what was streamed so far is sealed and read back,
layered over the previous version where the upload continues one, and every
chunk a write touches is kept in an encrypted scratch file (providers.scratch).
Commit then streams the result, chunk by chunk, into a fresh blob. Memory stays
at one chunk; nothing is visible before commit.
"""


class Layered:
    """Read-only: bytes [0, first_size) from `first`, then up to `second_size` from `second`."""

    def __init__(self, first, first_size: int, second, second_size: int):
        self._first, self._first_size = first, first_size
        self._second, self._second_size = second, second_size

    def read(self, offset: int, size: int) -> bytes:
        parts = []
        if offset < self._first_size:
            parts.append(self._first.read(offset, min(size, self._first_size - offset)))
        end = offset + size
        if self._second is not None and end > self._first_size and offset < self._second_size:
            start = max(offset, self._first_size)
            parts.append(self._second.read(start, min(end, self._second_size) - start))
        return b"".join(parts)

    def close(self) -> None:
        for reader in (self._first, self._second):
            if reader is not None:
                reader.close()


class Overlay:
    """Writes at any offset over `base`; modified chunks live in `scratch`."""

    def __init__(self, base, size: int, scratch, chunk_size: int):
        self._base, self._scratch, self._cs = base, scratch, chunk_size
        self.size = size
        self._index: int | None = None       # the chunk held in memory (write-back)
        self._chunk = bytearray()

    def write(self, offset: int, data) -> None:
        view, pos, cs = memoryview(data), 0, self._cs
        while pos < len(view):
            index, within = divmod(offset + pos, cs)
            n = min(cs - within, len(view) - pos)
            chunk = self._hold(index)
            if len(chunk) < within:
                chunk.extend(bytes(within - len(chunk)))
            chunk[within:within + n] = view[pos:pos + n]
            pos += n
        self.size = max(self.size, offset + len(view))

    def _hold(self, index: int) -> bytearray:
        if self._index != index:
            self._flush()
            self._chunk, self._index = self._load(index), index
        return self._chunk

    def _load(self, index: int) -> bytearray:
        data = self._scratch.get(index)
        if data is None:
            data = self._base.read(index * self._cs, self._cs) if self._base else b""
        return bytearray(data)

    def _flush(self) -> None:
        if self._index is not None:
            self._scratch.put(self._index, bytes(self._chunk))
            self._index = None

    def blocks(self):
        """The whole content in order, one chunk at a time."""
        self._flush()
        cs = self._cs
        for index in range((self.size + cs - 1) // cs):
            expected = min(cs, self.size - index * cs)
            data = self._load(index)[:expected]
            yield bytes(data) + bytes(expected - len(data))

    def close(self) -> None:
        self._scratch.close()
        if self._base is not None:
            self._base.close()
