"""Offboarding a client: `strongroom client remove NAME [--shred]`. Mixed into Admin.

Removing a client deletes, in one transaction, every row that belongs to it or
names it: its tree (nodes, versions, dead properties), WebDAV locks in its tree,
its notification rows, grants in its tree and library memberships, its users with
their SSH keys, app passwords, drive and portal sessions, invitations, messages
waiting for them and failed-login counters, and last its own row, which holds the
client key (wrapped by the master key). Every version's data key is wrapped by
that client key, so once that row is gone nothing of the client's can be
decrypted, not even with the master key and a copy of the blobs: that is the
crypto-shredding. The blobs themselves are deleted after the commit (a download
that has one open reads on to its end: POSIX unlink); one left behind by a crash
is unreadable ciphertext that `strongroom doctor --repair` removes.

Without `shred` a client that still has a file (live, in the trash, or as a
version) is refused: it is removed only when there is nothing to destroy. The
audit trail is hash-chained, so the events naming the client's paths stay; the
removal's own event names the client and counts, never a path inside it.

Libraries are not removed here: `strongroom library remove NAME --with-files`.
"""
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Engine, Select, delete, func, or_, select, text
from sqlalchemy.orm import Session as OrmSession

from strongroom.appliance.db.models import (AclGrant, AppPassword, Client, DeadProperty,
                                             DriveSession, Invitation, LibraryMember,
                                             LoginThrottle, Node, NotifyDelivery, NotifyDigest,
                                             NotifyEvent, User, UserKey, Version, WebSession)
from strongroom.appliance.db import repo
from strongroom.appliance.errors import BadRequest, Conflict
from strongroom.appliance.service.admin_base import AdminBase, Json
from strongroom.appliance.service.credentials import end_sessions

CHECKPOINT_WAIT_MS = 5000
BUSY_TIMEOUT_MS = 60000     # appliance.db.engine's, given back to the pooled connection


@dataclass(frozen=True)
class Holdings:
    """What a client holds: the counts a removal reports and its audit event names."""
    files: int        # file nodes: live and in the trash
    folders: int      # folder nodes below the tree's top
    versions: int     # every version of every file
    bytes: int        # the versions' sizes, summed
    users: int

    def detail(self) -> str:
        return (f"files={self.files} folders={self.folders} versions={self.versions} "
                f"users={self.users} bytes={self.bytes}")

    def as_json(self) -> Json:
        return {"files": self.files, "folders": self.folders, "versions": self.versions,
                "bytes": self.bytes, "users": self.users}


class RemoveMixin(AdminBase):
    def client_holdings(self, name: str) -> Json:
        """The counts `remove_client` would report for client `name` (NotFound for no
        client; BadRequest for a library), e.g. for a confirmation prompt."""
        with self.app.db.read() as s:
            client = self._removable(s, name)
            return dict(name=client.name, **_holdings(s, client.id).as_json())

    def remove_client(self, name: str, *, shred: bool = False) -> Json:
        """Remove client `name` and everything of it (see the module docstring); with
        `shred` also when it has files, which are then destroyed for good. Returns the
        name and the counts removed ("files", "folders", "versions", "bytes",
        "users"). Without `shred` a client with files is a Conflict, nothing changed."""
        sqlite = self.app.db.url.startswith("sqlite")
        with self.app.db.write() as s:
            client = self._removable(s, name)
            if self.app.db.locks_rows:
                # writers in the tree lock this row first (repo.lock_tree): wait for
                # those under way, so that every version they commit is found below
                s.execute(select(Client.id).where(Client.id == client.id).with_for_update())
            held = _holdings(s, client.id)
            if held.files and not shred:
                raise Conflict(_refusal(name, held))
            if sqlite:
                # deleted rows are overwritten with zeros, not left in free space (the
                # default of some builds only)
                s.execute(text("PRAGMA secure_delete = ON"))
            users = list(s.scalars(select(User).where(User.client_id == client.id)))
            end_sessions(s, self.app.locks, users)
            _delete_users(s, users)
            blobs = _delete_tree(s, client.id)
            self.app.locks.end(s, f"/{name}")
            s.execute(delete(Client).where(Client.id == client.id))
            s.expunge(client)
            self._audit(s, "client-remove", f"/{name}", held.detail() + f" shred={shred}")
        for blob_id in blobs:     # only now that no row refers to them
            self.app.provider.delete_blob(blob_id)
        if sqlite:
            checkpoint_wal(self.app.db.engine)
        return dict(name=name, shredded=shred, **held.as_json())

    def _removable(self, s: OrmSession, name: str) -> Client:
        row = repo.client_by_name(s, name)
        if row is not None and row.kind == "library":
            raise BadRequest(f"{name} is a library: remove it with "
                             f"'strongroom library remove {name} --with-files'")
        return self._client_row(s, name)


def checkpoint_wal(engine: Engine) -> None:
    """Copy SQLite's write-ahead log into the database file and empty it: until then
    the log and the file's old pages still hold the deleted rows, the wrapped key
    among them. Best effort: a reader of another process that holds on for more than
    a few seconds leaves it to SQLite's next automatic checkpoint."""
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute(f"PRAGMA busy_timeout = {CHECKPOINT_WAIT_MS}")
        cur.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        cur.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cur.close()
    finally:
        raw.close()


def _refusal(name: str, held: Holdings) -> str:
    files = f"{held.files} file" + ("" if held.files == 1 else "s")
    return (f"{name} still has {files} (the trash and versions counted); export them "
            f"(strongroom client export {name} --to FILE.tar) and remove it with "
            f"--shred --yes to destroy its data")


def _holdings(s: OrmSession, client_id: int) -> Holdings:
    nodes = select(Node.is_dir, func.count()).where(
        Node.client_id == client_id, Node.parent_id.is_not(None)).group_by(Node.is_dir)
    counts = {bool(is_dir): n for is_dir, n in s.execute(nodes)}
    versions, size = s.execute(select(func.count(), func.coalesce(func.sum(Version.size), 0))
                               .where(Version.node_id.in_(_node_ids(client_id)))).one()
    users = s.scalar(select(func.count()).select_from(User).where(User.client_id == client_id))
    return Holdings(files=counts.get(False, 0), folders=counts.get(True, 0),
                    versions=int(versions), bytes=int(size), users=int(users or 0))


def _node_ids(client_id: int) -> Select[int]:
    return select(Node.id).where(Node.client_id == client_id)


def _delete_users(s: OrmSession, users: list[User]) -> None:
    """Delete `users` and every row of theirs. Foreign keys would cascade most of
    these, but not every database's schema was made with the cascade: say it."""
    if not users:
        return
    ids = [u.id for u in users]
    for model in (DriveSession, UserKey, AppPassword, WebSession, Invitation, NotifyDelivery,
                  NotifyDigest):
        s.execute(delete(model).where(model.user_id.in_(ids)))
    s.execute(delete(AclGrant).where(AclGrant.subject_kind == "user",
                                     AclGrant.subject_id.in_(ids)))
    s.execute(delete(LoginThrottle).where(LoginThrottle.key.in_(
        [f"login:{u.login.lower()[:150]}" for u in users])))
    s.execute(delete(User).where(User.id.in_(ids)).execution_options(
        synchronize_session=False))
    for user in users:
        s.expunge(user)


def _delete_tree(s: OrmSession, client_id: int) -> list[str]:
    """Delete the rows of the client's tree and those naming the client; return the
    blob ids its versions used."""
    nodes = _node_ids(client_id)
    blobs = list(s.scalars(select(Version.blob_id).where(Version.node_id.in_(nodes))))
    events = select(NotifyEvent.id).where(NotifyEvent.client_id == client_id)
    s.execute(delete(NotifyDelivery).where(NotifyDelivery.event_id.in_(events)))
    s.execute(delete(NotifyEvent).where(NotifyEvent.client_id == client_id))
    s.execute(delete(DeadProperty).where(DeadProperty.node_id.in_(nodes)))
    s.execute(delete(Version).where(Version.node_id.in_(nodes)))
    # one statement: the folders' parent pointers are checked at its end
    s.execute(delete(Node).where(Node.client_id == client_id))
    s.execute(delete(AclGrant).where(_grant_of(client_id)))
    s.execute(delete(LibraryMember).where(or_(LibraryMember.client_id == client_id,
                                              LibraryMember.library_id == client_id)))
    return blobs


def _grant_of(client_id: int) -> ColumnElement[bool]:
    """Grants in the client's tree, and any naming the whole client."""
    return or_(AclGrant.client_id == client_id,
               (AclGrant.subject_kind == "client") & (AclGrant.subject_id == client_id))

