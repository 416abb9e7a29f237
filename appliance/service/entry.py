"""What the service layer returns about a file or folder."""
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, SupportsFloat

if TYPE_CHECKING:
    from strongroom.appliance.db.hotpath import NodeRow, VersionRow
    from strongroom.appliance.db.models import Node, Version


@dataclass(frozen=True)
class Entry:
    name: str
    path: str            # in the caller's view
    is_dir: bool
    size: int
    mtime: float
    ctime: float
    etag: str
    node_id: int | None = None
    version_id: int | None = None
    digest: str | None = None     # keyed: names the content, says nothing without the key
    # In a read-only view: the path (in the caller's view) of what the entry is
    # about (the file of a version, where a deleted item was); when an item of the
    # trash was deleted; whether it is deleted content (an item or inside one).
    origin: str | None = None
    deleted_at: float | None = None
    deleted: bool = False


@dataclass(frozen=True)
class VersionInfo:
    id: int
    size: int
    digest: str
    mtime: float
    created_at: float
    author: str | None
    current: bool
    pinned: bool = False      # kept whatever retention says (admin_versions)


class NodeFacts(Protocol):
    """What an Entry is made of, of a node: an ORM Node or a hot-path NodeRow."""
    @property
    def id(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def is_dir(self) -> bool: ...
    @property
    def created_at(self) -> float: ...
    @property
    def modified_at(self) -> float: ...


class VersionFacts(Protocol):
    """What an Entry is made of, of a version: an ORM Version or a VersionRow."""
    @property
    def id(self) -> int: ...
    @property
    def size(self) -> int: ...
    @property
    def digest(self) -> str: ...
    @property
    def mtime(self) -> float: ...
    @property
    def created_at(self) -> float: ...


LATEST_MTIME = 253402300799.0   # 9999-12-31 23:59:59 UTC: the last time every client shows


def checked_mtime(value: SupportsFloat | str | bytes) -> float:
    """A modification time a client sent, if every client can show it; BadRequest
    otherwise (a time past year 9999 broke listings for every user of the folder)."""
    from strongroom.appliance.errors import BadRequest
    try:
        mtime = float(value)
    except (TypeError, ValueError):
        raise BadRequest("a modification time must be a number of seconds") from None
    if not 0.0 <= mtime <= LATEST_MTIME:
        raise BadRequest("a modification time must lie between 1970 and 9999")
    return mtime


def file_entry(path: str, node: NodeFacts, version: VersionFacts) -> Entry:
    # the digest's hex part (after its scheme, "b3:" or "k1:")
    tag = version.digest.rpartition(":")[2][:16]
    return Entry(name=node.name, path=path, is_dir=False, size=version.size,
                 mtime=version.mtime, ctime=version.created_at,
                 etag=f"{node.id}-{version.id}-{tag}",
                 node_id=node.id, version_id=version.id, digest=version.digest)


def dir_entry(path: str, name: str, node: NodeFacts | None = None) -> Entry:
    if node is None:  # a virtual folder (the staff root)
        return Entry(name=name, path=path, is_dir=True, size=0, mtime=0.0, ctime=0.0, etag="root")
    return Entry(name=name, path=path, is_dir=True, size=0, mtime=node.modified_at,
                 ctime=node.created_at, etag=f"d{node.id}-{node.modified_at:.6f}", node_id=node.id)


def entry_for(path: str, node: NodeFacts, version: VersionFacts | None) -> Entry:
    """A folder's entry, or a file's of `version` (a file always has one)."""
    if node.is_dir:
        return dir_entry(path, node.name, node)
    if version is None:
        raise ValueError(f"a file without a version: node {node.id}")
    return file_entry(path, node, version)


if TYPE_CHECKING:
    def _rows_are_facts(n: Node, nr: NodeRow, v: Version, vr: VersionRow
                        ) -> tuple[NodeFacts, NodeFacts, VersionFacts, VersionFacts]:
        return n, nr, v, vr  # mypy checks that both kinds of row make entries
