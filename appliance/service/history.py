"""The read-only version view: `@versions` at the top of every tree mirrors the
tree's folders, and shows each file as a folder of all its versions, oldest
first, named '2026-11-24 10-15-03 v42 report.pdf' (the time the version was
made, UTC; the version id; the file's name). Any client can browse them and
copy one out; copying it back over the file restores it.

A path in the view is resolved by walking the database, never by reading meaning
into a name: a live file that happens to be called '2026-11-24 10-15-03 v42
report.pdf' is that file, and its rights are its own. Nothing below `@versions`
can be written, and no real file or folder can take that name at the top of a tree.
"""
import dataclasses
import datetime
import re

from sqlalchemy.orm import Session as OrmSession

from strongroom.appliance.db import repo
from strongroom.appliance.db.models import Node, Version
from strongroom.appliance.service.entry import Entry, dir_entry, entry_for
from strongroom.appliance.errors import NotFound
from strongroom.appliance.service.viewhit import Caller, Hit

VIEW = "@versions"
# an id of at most 10 digits: a longer one is no row, and PostgreSQL would refuse it
_NAME = re.compile(r"^\d{4}-\d\d-\d\d \d\d-\d\d-\d\d v(\d{1,10}) ")


def version_name(version: Version, name: str) -> str:
    when = datetime.datetime.fromtimestamp(version.created_at, datetime.timezone.utc)
    return f"{when:%Y-%m-%d %H-%M-%S} v{version.id} {name}"


class HistoryView:
    """Resolves and shows paths below `@versions` (see the module docstring)."""

    name = VIEW

    def resolve(self, s: OrmSession, client_id: int, rel: tuple[str, ...]) -> Hit | None:
        """A folder, a file seen as a folder (version None), or one version of a
        file; None if there is nothing at `rel` (below the view's name)."""
        node = repo.walk(s, client_id, rel)
        if node is not None:
            return Hit(node, None, rel)
        file = repo.walk(s, client_id, rel[:-1]) if rel else None
        if file is None or file.is_dir:
            return None
        version = _version_named(s, file, rel[-1])
        return None if version is None else Hit(file, version, rel[:-1])

    def stat(self, s: OrmSession, hit: Hit, path: str, caller: Caller) -> Entry:
        if hit.version is not None:
            return _version_entry(path, hit.node, hit.version, caller.place(hit.real))
        name = path.rstrip("/").rsplit("/", 1)[-1]
        return dir_entry(path, name, hit.node)

    def list(self, s: OrmSession, hit: Hit, path: str, caller: Caller) -> list[Entry]:
        """What is below `hit`, as far as the caller may see."""
        base = path.rstrip("/")
        if hit.version is not None:
            raise NotFound(f"not a folder: {path}")
        if not hit.node.is_dir:
            origin = caller.place(hit.real)
            return [_version_entry(f"{base}/{version_name(v, hit.node.name)}", hit.node, v,
                                   origin) for v in repo.versions_of(s, hit.node.id)]
        return [dir_entry(f"{base}/{n.name}", n.name, n)
                for n, _ in repo.children_with_versions(s, hit.node.id)
                if caller.visible(hit.real + (n.name,), n.is_dir)]

    def content(self, s: OrmSession, hit: Hit) -> tuple[Node, Version] | None:
        """(node, version) to read, or None if `hit` is not one version of a file."""
        return None if hit.version is None else (hit.node, hit.version)


def _version_named(s: OrmSession, file: Node, name: str) -> Version | None:
    """The version of `file` whose view name is exactly `name`, or None."""
    m = _NAME.match(name)
    if m is None:
        return None
    version = s.get(Version, int(m.group(1)))
    if version is None or version.node_id != file.id or version_name(version, file.name) != name:
        return None
    return version


def _version_entry(path: str, node: Node, version: Version, origin: str) -> Entry:
    e = entry_for(path, node, version)
    return dataclasses.replace(e, name=path.rsplit("/", 1)[-1], etag=f"{e.etag}-v",
                               origin=origin)
