"""Folder rights: pure rules, no storage.

Rights are letters: r (list and read), w (write: create, overwrite, mkdir),
d (delete, and move away), m (manage: grant rights below; implies the others).
A grant gives rights on a folder path and everything below it; rights from
several grants add up. Nothing is allowed without a grant (deny by default).
A path that is neither granted nor on the way to a granted folder is hidden:
it answers as if it did not exist.

Listing (LIST, not a right one is granted) needs read, or a folder that only leads
to a granted one: passing through shows folders, never a file's content. A file
is seen only with rights on it.
"""
from collections.abc import Collection, Iterable
from dataclasses import dataclass

RIGHTS = "rwdm"
LIST = "l"     # listing a folder, or seeing a folder's metadata: see the module docstring
NAMES = {"read": "r", "write": "w", "delete": "d", "manage": "m"}


@dataclass(frozen=True)
class Grant:
    path: tuple[str, ...]
    rights: str


def parse_rights(text: str) -> str:
    """'read,write' (names, comma-separated) -> 'rw'; ValueError for anything else:
    letters ('rwd') are the stored form, not one an admin types."""
    letters = set()
    for word in (w.strip() for w in text.split(",")):
        if word not in NAMES:
            what = f"unknown right {word!r}" if word else f"no right given in {text!r}"
            raise ValueError(f"{what}: rights are names, comma-separated: "
                             f"{', '.join(NAMES)} (read includes listing)")
        letters.add(NAMES[word])
    return "".join(r for r in RIGHTS if r in letters)


def describe(rights: str) -> str:
    return ",".join(name for name, letter in NAMES.items() if letter in rights)


def rights_at(grants: Iterable[Grant], path: tuple[str, ...]) -> str:
    """The rights `grants` give on `path` (inherited from every granted ancestor)."""
    letters = set()
    for g in grants:
        if path[:len(g.path)] == g.path:
            letters |= set(g.rights)
    if "m" in letters:
        letters |= set(RIGHTS)
    return "".join(r for r in RIGHTS if r in letters)


def leads_to_grant(grants: Iterable[Grant], path: tuple[str, ...]) -> bool:
    """True if some grant lies strictly below `path` (so `path` may be passed through)."""
    return any(len(g.path) > len(path) and g.path[:len(path)] == path for g in grants)


def visible(grants: Collection[Grant], path: tuple[str, ...], is_dir: bool = True) -> bool:
    """Whether a folder (or, with is_dir=False, a file) at `path` may be seen."""
    if rights_at(grants, path):
        return True
    return is_dir and leads_to_grant(grants, path)


def decide(grants: Collection[Grant], path: tuple[str, ...], right: str) -> str:
    """'ok', 'denied' (the path, or for a new name its folder, is visible but the
    right is missing) or 'hidden' (answered as if the path did not exist).

    LIST is allowed with read, and on a folder that only leads to granted folders:
    the caller shows just the children that are visible. Read itself (a file's
    content) needs the read right.
    """
    rights = rights_at(grants, path)
    if right in rights or (right == LIST and "r" in rights):
        return "ok"
    if right == LIST and leads_to_grant(grants, path):
        return "ok"
    if visible(grants, path):
        return "denied"
    if right == "w" and path and visible(grants, path[:-1]):
        return "denied"       # creating in a folder one can see, but not write to
    return "hidden"
