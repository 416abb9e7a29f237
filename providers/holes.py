"""The hole list of a blob: which whole chunks were never written and are not stored.

Text form, as the database keeps it: inclusive chunk ranges "a-b,c-d", ascending,
neither overlapping nor touching; None for a blob without holes (every blob written
before holes existed). The final chunk is never a hole.
"""
from collections.abc import Iterable, Sequence

from strongroom.providers.errors import CorruptData

# Bounds the text a version row carries (each stat of the file reads it): a file
# with more separate unwritten ranges than this is refused, not stored.
MAX_RUNS = 4096


def to_text(runs: Iterable[Sequence[int]]) -> str | None:
    """`runs`: half-open chunk ranges [first, end), ascending and merged."""
    return ",".join(f"{a}-{b - 1}" for a, b in runs) or None


def parse(text: str | None, last: int) -> list[tuple[int, int]]:
    """Half-open chunk ranges from the text form; CorruptData unless well-formed and
    below `last` (the final chunk's index)."""
    if not text:
        return []
    runs: list[tuple[int, int]] = []
    end = -1
    try:
        for part in text.split(","):
            a, b = (int(x) for x in part.split("-"))
            if not end < a <= b < last or f"{a}-{b}" != part:
                raise ValueError(part)
            runs.append((a, b + 1))
            end = b + 1
    except ValueError:
        raise CorruptData("the recorded holes of a blob are malformed") from None
    if len(runs) > MAX_RUNS:
        raise CorruptData("a blob records more holes than any blob may have")
    return runs


def byte_ranges(runs: Iterable[tuple[int, int]], chunk_size: int) -> list[tuple[int, int]]:
    """The hole runs as half-open byte ranges."""
    return [(a * chunk_size, b * chunk_size) for a, b in runs]
