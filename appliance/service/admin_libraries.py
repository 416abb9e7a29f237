"""Admin operations on shared libraries: trees staff publish read-only to every
client or to chosen ones. Mixed into Admin; every change is audited.

A library is a row of the clients table (kind "library"), so it shares the
clients' namespace. Removing one that holds files deletes them for good: its
versions, its trash and its key go with it; there is no trash for a removed
library.
"""
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session as OrmSession

from strongroom.appliance.db import repo
from strongroom.appliance.db.models import (AclGrant, Client, DeadProperty, LibraryMember, Node,
                                             Version)
from strongroom.appliance.errors import Conflict
from strongroom.appliance.service.admin_base import Json
from strongroom.appliance.service.admin_clients import ClientsMixin


class LibrariesMixin(ClientsMixin):
    def add_library(self, name: str, clients: list[str] | None) -> Json:
        """A read-only shared tree, at /NAME in the view of every client (or of `clients`)."""
        with self.app.db.read() as s:
            members = [self._client_row(s, c) for c in clients] if clients else \
                repo.clients(s, "client")
            for c in members:
                if repo.walk(s, c.id, (name,)) is not None:
                    raise Conflict(f"client {c.name} has a top-level {name!r}; "
                                   f"choose another library name")
        made = self.add_client(name, None, kind="library")
        with self.app.db.write() as s:
            lib = self._client_row(s, name, kind="library")
            lib.shared_with_all = not clients
            for c in members if clients else ():
                s.add(LibraryMember(library_id=lib.id, client_id=c.id))
            self._audit(s, "library-publish", f"/{name}",
                        "clients=" + (",".join(clients) if clients else "*"))
        return dict(made, clients=sorted(clients) if clients else "*")

    def list_libraries(self) -> list[Json]:
        with self.app.db.read() as s:
            out = []
            for lib in repo.clients(s, "library"):
                members = s.scalars(select(Client.name).join(
                    LibraryMember, LibraryMember.client_id == Client.id)
                    .where(LibraryMember.library_id == lib.id).order_by(Client.name))
                out.append({"name": lib.name, "used_bytes": lib.used_bytes,
                            "clients": "*" if lib.shared_with_all else list(members)})
            return out

    def remove_library(self, name: str, *, with_files: bool = False) -> Json:
        """Remove library `name`. Refused while it holds files or folders (in the trash
        too) unless `with_files`: then they, their versions and the library's key are
        deleted for good. Blobs are deleted after the commit; one left behind by a
        crash is unreadable without the key, and `strongroom doctor --repair` removes it."""
        with self.app.db.write() as s:
            lib = self._client_row(s, name, kind="library")
            entries = s.scalar(select(func.count()).select_from(Node).where(
                Node.client_id == lib.id, Node.parent_id.is_not(None)))
            if entries and not with_files:
                raise Conflict(f"library {name} holds {entries} files or folders (the trash "
                               f"counted): give --with-files to delete them with it")
            blobs = _delete_tree(s, lib.id)
            self.app.locks.drop(s, [lock["token"] for lock in
                                    self.app.locks.listed(s, root=f"/{name}")])
            s.delete(lib)
            self._audit(s, "library-remove", f"/{name}",
                        f"entries={entries} versions={len(blobs)}")
        for blob_id in blobs:
            self.app.provider.delete_blob(blob_id)
        return {"name": name, "entries": entries, "versions": len(blobs)}


def _delete_tree(s: OrmSession, tree_id: int) -> list[str]:
    """Delete every row of a tree but the tree's own; return the blob ids it used."""
    node_ids = select(Node.id).where(Node.client_id == tree_id)
    blobs = list(s.scalars(select(Version.blob_id).where(Version.node_id.in_(node_ids))))
    s.execute(delete(DeadProperty).where(DeadProperty.node_id.in_(node_ids)))
    s.execute(delete(Version).where(Version.node_id.in_(node_ids)))
    # one statement: the folders' parent pointers are checked at its end
    s.execute(delete(Node).where(Node.client_id == tree_id))
    s.execute(delete(AclGrant).where(AclGrant.client_id == tree_id))
    s.execute(delete(LibraryMember).where(LibraryMember.library_id == tree_id))
    return blobs
