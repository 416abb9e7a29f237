"""Virtual paths: cleaning, confinement and the per-role view of the tree.

A path from any protocol is cleaned here once: '.' and '..' are resolved
lexically and can never climb above '/', so every path names something inside
the user's view. Names are checked for what no store should accept.
"""
from collections.abc import Iterable
from dataclasses import dataclass

from strongroom.appliance.errors import BadRequest

MAX_NAME_BYTES = 255
MAX_DEPTH = 64
_FORBIDDEN = {chr(c) for c in range(32)} | {"\x7f"}
# A path as a protocol hands it over: text, or bytes that must be UTF-8.
RawPath = str | bytes


def clean(path: object) -> tuple[str, ...]:
    """Split `path` into validated components, confined to the root; BadRequest
    unless it is text (or UTF-8 bytes)."""
    if isinstance(path, bytes):
        try:
            path = path.decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequest("path is not valid UTF-8") from None
    if not isinstance(path, str):
        raise BadRequest("path must be text")
    parts: list[str] = []
    for comp in path.split("/"):
        if comp in ("", "."):
            continue
        if comp == "..":
            if parts:
                parts.pop()
            continue
        check_name(comp)
        parts.append(comp)
    if len(parts) > MAX_DEPTH:
        raise BadRequest(f"path is deeper than {MAX_DEPTH} levels")
    return tuple(parts)


def check_name(name: str) -> None:
    if any(ch in _FORBIDDEN for ch in name):
        raise BadRequest("name contains a control character")
    try:
        encoded = name.encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest("name is not valid UTF-8") from None
    if len(encoded) > MAX_NAME_BYTES:
        raise BadRequest(f"name is longer than {MAX_NAME_BYTES} bytes")
    if name in (".", ".."):
        raise BadRequest("'.' and '..' are not names")


def join(parts: Iterable[str]) -> str:
    return "/" + "/".join(parts)


@dataclass(frozen=True)
class Target:
    """Where a cleaned path lands: the staff root (client=None), a tree's root, or below.
    `prefix` is what stands before `rel` in the user's view ('/<client>' for staff,
    '/<library>' for a library in a client user's view, nothing for its own tree)."""
    client: str | None
    rel: tuple[str, ...]
    prefix: tuple[str, ...] = ()

    def parent(self) -> "Target":
        return Target(self.client, self.rel[:-1], self.prefix)

    def at(self, rel: tuple[str, ...]) -> "Target":
        """The target at another path of the same tree."""
        return Target(self.client, tuple(rel), self.prefix)

    @property
    def is_view_root(self) -> bool:
        return self.client is None

    @property
    def canonical(self) -> str:
        """'/<client>/<rel>': the same string whoever looks at the node."""
        return "/" + "/".join(((self.client,) if self.client else ()) + self.rel)
