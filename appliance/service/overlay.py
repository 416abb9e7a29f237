"""Random-access writes over an upload's earlier content.

An upload streams into a new blob while writes arrive in order. The first write
before the current end (sshfs editing in place, a client re-sending a block)
switches it to an `Overlay`: what was streamed so far is sealed and read back,
layered over the previous version where the upload continues one, and every
chunk a write touches is kept in an encrypted scratch file (providers.scratch).
Commit then streams the result, chunk by chunk, into a fresh blob; chunks that
nobody wrote and that hold nothing below (holes, or past the end of what is
layered) stay holes. Memory stays at one chunk; nothing is visible before commit.
"""
import bisect
from collections.abc import Iterator, Sequence

from strongroom.providers.base import BlobReader, Scratch

NOWHERE = float("inf")
# Half-open byte ranges [start, end), ascending; an end may be NOWHERE.
Spans = Sequence[tuple[float, float]]


def extent_at(holes: Spans, pos: int) -> tuple[bool, float]:
    """(True, end of the hole) if `pos` is inside one of the ascending half-open
    byte ranges `holes`, else (False, start of the next hole or infinity)."""
    i = bisect.bisect_right(holes, (pos, NOWHERE)) - 1
    if i >= 0 and pos < holes[i][1]:
        return True, holes[i][1]
    return False, holes[i + 1][0] if i + 1 < len(holes) else NOWHERE


def _within(holes: Sequence[tuple[int, int]], start: int, end: int
            ) -> list[tuple[int, int]]:
    """`holes` clipped to [start, end)."""
    return [(max(a, start), min(b, end)) for a, b in holes if a < end and b > start]


class Layered:
    """Read-only: bytes [0, first_size) from `first`, then up to `second_size` from `second`."""

    def __init__(self, first: BlobReader, first_size: int, second: BlobReader | None,
                 second_size: int):
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

    def hole_ranges(self) -> list[tuple[int, float]]:
        """Where reads give zeros that nothing stores: the layers' holes, and all
        past the end of both (the last range reaches to infinity), merged."""
        ranges: list[tuple[int, float]] = []
        ranges += _within(self._first.hole_ranges(), 0, self._first_size)
        covered = self._first_size
        if self._second is not None and self._second_size > covered:
            ranges += _within(self._second.hole_ranges(), covered, self._second_size)
            covered = self._second_size
        ranges.append((covered, NOWHERE))
        merged: list[tuple[int, float]] = []
        for a, b in ranges:
            if merged and merged[-1][1] >= a:
                merged[-1] = (merged[-1][0], max(merged[-1][1], b))
            elif b > a:
                merged.append((a, b))
        return merged

    def close(self) -> None:
        for reader in (self._first, self._second):
            if reader is not None:
                reader.close()


class Overlay:
    """Writes at any offset over `base` (a Layered); modified chunks live in `scratch`."""

    def __init__(self, base: Layered, size: int, scratch: Scratch, chunk_size: int):
        self._base, self._scratch, self._cs = base, scratch, chunk_size
        self.size = size
        self._index: int | None = None       # the chunk held in memory (write-back)
        self._chunk = bytearray()

    def write(self, offset: int, data: bytes | bytearray | memoryview) -> None:
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

    def blocks(self) -> Iterator[bytes | int]:
        """The whole content in order: bytes for each chunk that holds data, and an
        int n for n zero bytes that are a hole (whole chunks nobody wrote here,
        over holes of the base or past its end)."""
        self._flush()
        cs, size = self._cs, self.size
        holes: Spans = self._base.hole_ranges() if self._base else [(0, NOWHERE)]
        written = self._scratch.indices()
        count, index = (size + cs - 1) // cs, 0
        while index < count:
            stop = self._hole_end(holes, written, index, count)
            if stop > index:
                yield min(stop * cs, size) - index * cs
                index = stop
                continue
            expected = min(cs, size - index * cs)
            data = self._load(index)[:expected]
            yield bytes(data) + bytes(expected - len(data))
            index += 1

    def _hole_end(self, holes: Spans, written: Sequence[int], index: int, count: int) -> int:
        """The chunk after the run of hole chunks starting at `index` (`index` if none)."""
        cs, size = self._cs, self.size
        in_hole, end = extent_at(holes, index * cs)
        if not in_hole:
            return index
        stop = count if end >= size else int(end // cs)   # chunks wholly inside the hole
        i = bisect.bisect_left(written, index)
        if i < len(written):
            stop = min(stop, written[i])
        return stop

    def close(self) -> None:
        self._scratch.close()
        if self._base is not None:
            self._base.close()
