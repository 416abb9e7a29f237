"""The read-only version view, mixed into Session: `@versions` at the top of every
tree mirrors the tree's folders, and shows each file as a folder of all its
versions, oldest first, named '2026-11-24 10-15-03 v42 report.pdf' (the time the
version was made, UTC; the version id; the file's name). Any client can browse
them and copy one out; copying it back over the file restores it.

Rights are those of the real path (reading a version needs read on the file);
nothing below `@versions` can be written, and no real file or folder can take
that name at the top of a tree.
"""
import datetime
import re

from appliance.db import repo
from appliance.db.models import Version
from appliance.errors import NotFound
from appliance.session.entry import Entry, dir_entry, entry_for

VIEW = "@versions"
_NAME = re.compile(r"^\d{4}-\d\d-\d\d \d\d-\d\d-\d\d v(\d+) ")


def in_view(rel: tuple) -> bool:
    return bool(rel) and rel[0] == VIEW


def real_rel(rel: tuple) -> tuple:
    """The real path a path in the view is about (for rights)."""
    if not in_view(rel):
        return rel
    return rel[1:-1] if len(rel) > 1 and _NAME.match(rel[-1]) else rel[1:]


def version_name(version, name: str) -> str:
    when = datetime.datetime.fromtimestamp(version.created_at, datetime.timezone.utc)
    return f"{when:%Y-%m-%d %H-%M-%S} v{version.id} {name}"


class HistoryMixin:
    def _history(self, s, client, t):
        """(node, version): a folder or a file seen as a folder (version None), or one
        version of a file; NotFound otherwise."""
        rel = t.rel[1:]
        node = repo.walk(s, client.id, rel)
        if node is not None:
            return node, None
        file = repo.walk(s, client.id, rel[:-1]) if rel else None
        m = _NAME.match(rel[-1]) if rel else None
        if file is not None and not file.is_dir and m and int(m.group(1)) < 2**31:
            version = s.get(Version, int(m.group(1)))
            if version is not None and version.node_id == file.id \
                    and version_name(version, file.name) == rel[-1]:
                return file, version
        raise NotFound(f"no such version or folder: {self.view_path(t)}")

    def _history_stat(self, s, client, t) -> Entry:
        node, version = self._history(s, client, t)
        path = self.view_path(t)
        if version is not None:
            return _version_entry(path, node, version)
        return dir_entry(path, t.rel[-1] if len(t.rel) > 1 else VIEW, node)

    def _history_list(self, s, client, t) -> list[Entry]:
        node, version = self._history(s, client, t)
        base = self.view_path(t).rstrip("/")
        if version is not None:
            raise NotFound(f"not a folder: {self.view_path(t)}")
        if not node.is_dir:
            return [_version_entry(f"{base}/{version_name(v, node.name)}", node, v)
                    for v in repo.versions_of(s, node.id)]
        rel = t.rel[1:]
        everything = self._may_read_all(s, client, rel)
        return [dir_entry(f"{base}/{n.name}", n.name, n)
                for n, _ in repo.children_with_versions(s, node.id)
                if everything or self._visible_child(s, client, rel, n.name)]

    def _history_version(self, s, client, t):
        node, version = self._history(s, client, t)
        if version is None:
            raise NotFound(f"not a version of a file: {self.view_path(t)}")
        return node, version


def _version_entry(path: str, node, version) -> Entry:
    e = entry_for(path, node, version)
    return Entry(name=path.rsplit("/", 1)[-1], path=path, is_dir=False, size=e.size,
                 mtime=e.mtime, ctime=e.ctime, etag=f"{e.etag}-v", node_id=node.id,
                 version_id=version.id, digest=version.digest)
