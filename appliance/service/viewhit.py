"""What a read-only view (`@versions`, `@trash`) found at a path, and what the
views need to know of the caller: the two small types the views and Session share."""
from dataclasses import dataclass
from typing import Callable

from strongroom.appliance.db.models import Node, Version


@dataclass(frozen=True)
class Hit:
    """A path in a view, resolved by walking the database.

    `real` is the path, inside the tree, of what the hit is about (the folder, the
    file, the file a version belongs to, the deleted item where it was), built from
    the names of the rows walked: rights are decided on it, never on view names.
    `deleted`: deleted content (a deleted item, or what was in one), not a live
    folder on the way to deleted items."""
    node: Node
    version: Version | None
    real: tuple[str, ...]
    deleted: bool = False


@dataclass(frozen=True)
class Caller:
    """What a view may ask about the principal listing it."""
    # may the caller see this folder (True) or file?
    visible: Callable[[tuple[str, ...], bool], bool]
    place: Callable[[tuple[str, ...]], str]    # a real path as the caller names it
