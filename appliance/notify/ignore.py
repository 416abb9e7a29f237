"""Editor and OS litter: the file names that never notify anyone and keep no
version history ([notify] ignore).

A pattern is a glob (fnmatch: `*`, `?`, `[...]`) matched against one file name,
never a path, without regard to case: Windows and macOS, where this litter comes
from, do not tell `Thumbs.db` from `THUMBS.DB`, and a `*.part` that escaped as
`X.PART` is no more a document.
"""
import fnmatch
import functools
import re
from collections.abc import Iterable

from strongroom.config.converters import name_patterns
from strongroom.config.schema import SCHEMA

# The schema's default, for callers without a configuration (a test, a tool).
DEFAULT_IGNORE: tuple[str, ...] = name_patterns(SCHEMA["notify"]["ignore"].default)


def ignored(name: str, patterns: Iterable[str] = DEFAULT_IGNORE) -> bool:
    """Whether file name `name` (one path component) matches any of `patterns`."""
    return _compiled(tuple(patterns)).match(name) is not None


@functools.lru_cache(maxsize=16)
def _compiled(patterns: tuple[str, ...]) -> re.Pattern[str]:
    """One case-insensitive regular expression for a whole list (a list is compiled
    once: the daemon asks with the same [notify] ignore every time)."""
    if not patterns:
        return re.compile(r"(?!)")     # matches nothing
    return re.compile("|".join(fnmatch.translate(p) for p in patterns), re.IGNORECASE)
