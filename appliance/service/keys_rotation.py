"""Key rotation while the daemon serves: `keys rotate-master` and `keys rotate-client`.

Both make the new key first and record it in the database (its own commit), rewrap
in batches of one transaction each (a row changes only while it is still wrapped by
the old key, read FOR UPDATE), and finish in one transaction that locks the row the
old key's id lives in and drops the old key only if nothing is wrapped by it any
more (else it rewraps what came meanwhile, and tries again). A crash anywhere leaves
the new key recorded, so running the command again resumes where it stopped.

A master rotation's finish then stores the new key in the key source and forgets the
'master-next' row; a source we cannot write (a systemd credential) gets the key in a
file of the admin's choosing instead, and the row stays until a start finds the
source holding the new key (appliance.service.keys_store).
"""
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session as OrmSession

from strongroom.appliance.db.models import ApplianceKey, Client, Node, Version
from strongroom.appliance.errors import BadRequest, Busy, NotFound
from strongroom.appliance.keysource import KeyUnavailable, write_key_file
from strongroom.appliance.service import keys_store as store
from strongroom.appliance.service.admin_remove import checkpoint_wal
from strongroom.appliance.service.keys_store import DERIVE, MASTER, NEXT
from strongroom.appliance.service.meter import NO_METER, Meter
from strongroom.providers import crypto
from strongroom.providers.digest import client_digest_key
from strongroom.providers.keys import master_key_id, new_key_id

if TYPE_CHECKING:
    from strongroom.appliance.app import App

Json = dict[str, Any]
BATCH = 500
# How often a finish may find keys that arrived meanwhile before giving up; each
# round rewraps them, and only uploads opened before the rotation began add any.
_ROUNDS = 20


class Rotation:
    """What both rotations share: the app, the batch size, progress, and the hook a
    test overrides to fail inside a batch."""

    def __init__(self, app: "App", *, batch: int = BATCH, meter: Meter = NO_METER) -> None:
        if batch < 1:
            raise BadRequest("--batch must be at least 1")
        self.app, self.batch, self.meter = app, batch, meter
        self.ring = app.keyring

    def in_batch(self, s: OrmSession, done: int) -> None:
        """Called inside each batch's transaction, before it commits (tests)."""

    @contextmanager
    def _write(self) -> Iterator[OrmSession]:
        """A write transaction that overwrites with zeros what it replaces (SQLite's
        secure_delete): a key wrapped by the old key must not stay in the file's free
        space, where the old key (the reason to rotate) would still open it."""
        with self.app.db.write() as s:
            if self._sqlite:
                s.execute(text("PRAGMA secure_delete = ON"))
            yield s

    @property
    def _sqlite(self) -> bool:
        return self.app.db.url.startswith("sqlite")

    def _forget_old(self) -> None:
        """Empty SQLite's write-ahead log, whose frames still hold the rows as they were
        before the rotation (best effort, as for client remove --shred)."""
        if self._sqlite:
            checkpoint_wal(self.app.db.engine)

    def _audit(self, s: OrmSession, action: str, path: str | None, detail: str) -> None:
        self.app.audit.append(s, actor=self.app.admin_name, protocol="cli", address=None,
                              action=action, path=path, detail=detail)

    def _rounds(self, rewrap: Callable[[], int], finish: Callable[[], bool]) -> int:
        """Rewrap, then finish; again while the finish finds keys left. Rewrapped count."""
        done = 0
        for _ in range(_ROUNDS):
            done += rewrap()
            if finish():
                return done
        raise Busy("keys keep arriving under the old key; run the rotation again")


class MasterRotation(Rotation):
    """`keys rotate-master`: every master-wrapped key rewrapped by a new master key."""

    def run(self, new_key_to: Path | None = None) -> Json:
        source = self.app.key_source
        if not source.writable and new_key_to is None:
            raise KeyUnavailable(f"the master key is the {source.describe()}, which "
                                 "strongroom cannot write: give --new-key-to FILE (off the "
                                 "data disk) to receive the new key; nothing was changed")
        if new_key_to is not None and os.path.lexists(new_key_to):
            raise BadRequest(f"{new_key_to} exists: --new-key-to never overwrites a file; "
                             "nothing was changed")
        old, new, key = self._begin()
        self.meter.start(self._left(old))
        rewrapped = self._rounds(lambda: self._rewrap(old, new), lambda: self._finish(old, new))
        out: Json = {"old_key_id": old, "new_key_id": new, "rewrapped": rewrapped,
                     "source": self.app.key_source.describe(), "pending": None}
        try:
            self.app.key_source.store(key)
        except KeyUnavailable as e:
            out["pending"] = self._pending(e, key, new_key_to)
        else:
            with self._write() as s:
                store.drop_next(s)
        with self._write() as s:
            self._audit(s, "keys-rotate-master", None, f"old={old} new={new} rewrapped="
                        f"{rewrapped}" + (" pending=store" if out["pending"] else ""))
        self._forget_old()
        return out

    def _begin(self) -> tuple[str, str, bytes]:
        """(old id, new id, new key): the 'master-next' row made (committed) or resumed."""
        with self._write() as s:
            master = s.get(ApplianceKey, MASTER, with_for_update=True)
            nxt = s.get(ApplianceKey, NEXT)
            assert master is not None        # made by every start (keys_store)
            if nxt is None:
                key = crypto.new_key()
                new = self.ring.add_master(key, master_key_id(key))
                store.insert_key(s, NEXT, new, self.ring.wrap(master.key_id, key),
                                 master.key_id)
                return master.key_id, new, key
            key = self.ring.master(nxt.key_id)
            old = master.key_id if master.key_id != nxt.key_id else nxt.master_key_id
            return str(old), nxt.key_id, key

    def _left(self, old: str) -> int:
        with self.app.db.read() as s:
            return int(s.scalar(select(func.count()).where(Client.master_key_id == old)) or 0)

    def _rewrap(self, old: str, new: str) -> int:
        done = 0
        while rows := self._batch(old, new, done):
            done += rows
            self.meter.advance(rows)
        with self._write() as s:
            row = s.get(ApplianceKey, DERIVE, with_for_update=True)
            if row is not None and row.master_key_id == old and row.wrapped is not None:
                row.wrapped = self._again(old, new, bytes(row.wrapped))
                row.master_key_id = new
        return done

    def _batch(self, old: str, new: str, done: int) -> int:
        with self._write() as s:
            rows = s.scalars(select(Client).where(Client.master_key_id == old)
                             .order_by(Client.id).limit(self.batch).with_for_update()).all()
            for c in rows:
                c.wrapped_key = self._again(old, new, bytes(c.wrapped_key))
                if c.next_wrapped_key is not None:
                    c.next_wrapped_key = self._again(old, new, bytes(c.next_wrapped_key))
                if c.wrapped_digest_key is not None:
                    c.wrapped_digest_key = self._again(old, new, bytes(c.wrapped_digest_key))
                c.master_key_id = new
            s.flush()
            self.in_batch(s, done + len(rows))
            return len(rows)

    def _again(self, old: str, new: str, wrapped: bytes) -> bytes:
        return self.ring.wrap(new, self.ring.unwrap(old, wrapped))

    def _finish(self, old: str, new: str) -> bool:
        """'master' names the new key, if nothing is wrapped by the old one any more."""
        with self._write() as s:
            master = s.get(ApplianceKey, MASTER, with_for_update=True)
            assert master is not None
            if master.key_id == new:
                return True
            left = s.scalar(select(func.count()).where(Client.master_key_id == old))
            derive = s.get(ApplianceKey, DERIVE)
            if left or (derive is not None and derive.master_key_id == old):
                return False
            master.key_id = new
            return True

    def _pending(self, e: KeyUnavailable, key: bytes, to: Path | None) -> str:
        """The source cannot take the new key: write it to `to` for the admin, or say
        how to get it there."""
        if to is None:
            raise KeyUnavailable(f"every key is rewrapped, but the new master key cannot be "
                                 f"stored: {e}; run 'strongroom keys rotate-master "
                                 f"--new-key-to FILE' to have it written to FILE") from None
        try:
            write_key_file(to, key)
        except KeyUnavailable as err:
            raise BadRequest(f"--new-key-to: {err}") from None
        return (f"the new master key is in {to}: put it where "
                f"{self.app.key_source.describe()} reads it (systemd-creds encrypt), "
                "restart the daemon, then remove the file")


class ClientRotation(Rotation):
    """`keys rotate-client NAME`: a new client key; the client's data keys rewrapped."""

    def run(self, name: str) -> Json:
        cid, old, new = self._begin(name)
        self.meter.start(self._left(cid, old))
        rewrapped = self._rounds(lambda: self._rewrap(cid, old, new),
                                 lambda: self._finish(cid, old, new))
        with self._write() as s:
            self._audit(s, "keys-rotate-client", f"/{name}",
                        f"old={old} new={new} rewrapped={rewrapped}")
        self._forget_old()
        return {"client": name, "old_key_id": old, "new_key_id": new, "rewrapped": rewrapped}

    def _begin(self, name: str) -> tuple[int, str, str]:
        """(client id, old key id, new key id): the next key made (committed) or resumed."""
        with self._write() as s:
            c = s.scalar(select(Client).where(Client.name == name).with_for_update())
            if c is None:
                raise NotFound(f"no client or library named {name!r}")
            if c.next_key_id is None:
                self._next_key(s, c)
            assert c.next_key_id is not None
            return c.id, c.key_id, c.next_key_id

    def _next_key(self, s: OrmSession, c: Client) -> None:
        """Record a new key as the client's next; its keys are wrapped by the master id
        new keys get now (keys_store.wrapping_id), the digest key kept from the old."""
        wrapping = store.wrapping_id(s.connection(), self.ring)
        current = self.ring.unwrap(c.master_key_id, bytes(c.wrapped_key))
        digest = client_digest_key(current) if c.wrapped_digest_key is None else \
            self.ring.unwrap(c.master_key_id, bytes(c.wrapped_digest_key))
        c.wrapped_key = self.ring.wrap(wrapping, current)
        c.wrapped_digest_key = self.ring.wrap(wrapping, digest)
        c.next_wrapped_key = self.ring.wrap(wrapping, crypto.new_key())
        c.next_key_id, c.master_key_id = new_key_id(), wrapping

    def _versions(self, cid: int, old: str) -> Any:
        return select(Version).where(Version.client_key_id == old, Version.node_id.in_(
            select(Node.id).where(Node.client_id == cid)))

    def _left(self, cid: int, old: str) -> int:
        with self.app.db.read() as s:
            return int(s.scalar(select(func.count()).select_from(
                self._versions(cid, old).subquery())) or 0)

    def _rewrap(self, cid: int, old: str, new: str) -> int:
        done = 0
        while rows := self._batch(cid, old, new, done):
            done += rows
            self.meter.advance(rows)
        return done

    def _batch(self, cid: int, old: str, new: str, done: int) -> int:
        with self._write() as s:
            keys = store.held_client_keys(s.connection(), self.ring, cid)
            rows = s.scalars(self._versions(cid, old).order_by(Version.id)
                             .limit(self.batch).with_for_update()).all()
            for v in rows:
                v.wrapped_key = crypto.wrap_key(keys[new], crypto.unwrap_key(
                    keys[old], bytes(v.wrapped_key)))
                v.client_key_id = new
            s.flush()
            self.in_batch(s, done + len(rows))
            return len(rows)

    def _finish(self, cid: int, old: str, new: str) -> bool:
        """The next key becomes the client's key, if no data key is wrapped by the old."""
        with self._write() as s:
            c = s.scalar(select(Client).where(Client.id == cid).with_for_update())
            if c is None:
                raise NotFound("the client was removed during its key rotation")
            if c.key_id == new:
                return True
            if s.scalar(select(func.count()).select_from(self._versions(cid, old).subquery())):
                return False
            s.execute(update(Client).where(Client.id == cid, Client.next_key_id == new).values(
                key_id=new, wrapped_key=Client.next_wrapped_key, next_key_id=None,
                next_wrapped_key=None))
            return True
