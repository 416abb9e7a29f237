"""The keys in the database, and how a process finds the ones it needs.

`open_keyring` gives App its KeyRing: the source's master key, the next master key of
a rotation in progress ('master-next', wrapped by a key the ring holds) and the base
of the derived keys ('derive'). It refuses a master key that is not the appliance's,
finishes what a crash left of a master rotation's last step, and fills in what
migration 0010 could not (it had no key).

Client keys are found by id (clients.key_id, or next_key_id during a client rotation)
and remembered by the ring: a key id never names another key, so what is remembered
is never stale. Another process (the CLI) may have rotated meanwhile, so a miss
re-reads the client's row, and then the version's row, once. New master-wrapped keys
are wrapped by the id `wrapping_id` reads in the writer's transaction, with the
'master' row locked against a rotation's finish (appliance.service.keys_rotation).
"""
import time
from typing import Any, NamedTuple

from sqlalchemy import Table, bindparam, delete, exists, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session as OrmSession

from strongroom.appliance import keysource
from strongroom.appliance.db.engine import Database
from strongroom.appliance.db.hotpath import HotPath
from strongroom.appliance.db.models import ApplianceKey, AuditEvent, Base, Client, Version
from strongroom.appliance.keysource import KeySource, KeyUnavailable
from strongroom.providers import crypto
from strongroom.providers.digest import client_digest_key
from strongroom.providers.errors import CorruptData
from strongroom.providers.keys import KeyRing, UnknownKey, new_key_id

MASTER, NEXT, DERIVE = "master", "master-next", "derive"
_KEYS: Table = Base.metadata.tables[ApplianceKey.__tablename__]


class ClientKeys(NamedTuple):
    """A client's key columns (models.Client's names), bytes normalised."""
    key_id: str
    wrapped_key: bytes
    next_key_id: str | None
    next_wrapped_key: bytes | None
    wrapped_digest_key: bytes | None
    master_key_id: str | None


_CLIENT_KEYS = select(Client.key_id, Client.wrapped_key, Client.next_key_id,
                      Client.next_wrapped_key, Client.wrapped_digest_key,
                      Client.master_key_id).where(Client.id == bindparam("client_id"))
_VERSION_KEY = select(Version.client_key_id, Version.wrapped_key).where(
    Version.id == bindparam("version_id"))
_WRAPPING = (select(ApplianceKey.name, ApplianceKey.key_id)
             .where(ApplianceKey.name.in_([MASTER, NEXT])).with_for_update(read=True))


def _bytes(value: Any) -> bytes | None:
    return None if value is None else bytes(value)


def client_keys(db: HotPath, client_id: int) -> ClientKeys | None:
    row = db.execute(_CLIENT_KEYS, {"client_id": client_id}).first()
    if row is None:
        return None
    return ClientKeys(row[0], bytes(row[1]), row[2], _bytes(row[3]), _bytes(row[4]), row[5])


# -- start ---------------------------------------------------------------------------------

def open_keyring(db: Database, source: KeySource) -> KeyRing:
    """The KeyRing of a process (see the module docstring); KeyUnavailable with one
    line if the source's key is not this appliance's."""
    key = source.load()
    ring = KeyRing(key, master_id=keysource.key_id(key))
    ring.reload = lambda: reload(db, source, ring)
    try:
        with db.write() as s:
            _start(s, source, ring)
    except IntegrityError:          # another process started at the same instant
        with db.write() as s:
            _start(s, source, ring)
    return ring


def reload(db: Database, source: KeySource, ring: KeyRing) -> None:
    """Read the source's key and the next master key again (another process rotated)."""
    key = source.load()
    ring.add_master(key, keysource.key_id(key))
    with db.read() as s:
        _add_next(s, ring)


def _rows(s: OrmSession) -> dict[str, ApplianceKey]:
    return {r.name: r for r in s.scalars(select(ApplianceKey))}


def _add_next(s: OrmSession, ring: KeyRing) -> None:
    nxt = s.get(ApplianceKey, NEXT, populate_existing=True)
    if nxt is not None and nxt.wrapped is not None and nxt.master_key_id is not None \
            and ring.holds(nxt.master_key_id) and not ring.holds(nxt.key_id):
        ring.add_master(ring.unwrap(nxt.master_key_id, bytes(nxt.wrapped)), nxt.key_id)


def _start(s: OrmSession, source: KeySource, ring: KeyRing) -> None:
    rows = _rows(s)
    _add_next(s, ring)
    master = rows.get(MASTER)
    if master is None:
        master = _first_master(s, ring)
    elif not ring.holds(master.key_id):
        raise KeyUnavailable(f"the master key (id {ring.current_id}, {source.describe()}) is "
                             f"not this appliance's (its keys are wrapped by id "
                             f"{master.key_id})")
    nxt = rows.get(NEXT)
    if nxt is not None and nxt.key_id == ring.current_id == master.key_id:
        s.delete(nxt)    # a finished rotation whose source already holds the new key
    s.execute(update(Client).where(Client.master_key_id.is_(None))
              .values(master_key_id=master.key_id))
    _derive_base(s, ring, rows.get(DERIVE), master.key_id)


def _first_master(s: OrmSession, ring: KeyRing) -> ApplianceKey:
    """The 'master' row of a new or just upgraded appliance, once the source's key is
    shown to unwrap a client key (if there is one)."""
    sample = s.scalar(select(Client.wrapped_key).where(Client.master_key_id.is_(None))
                      .order_by(Client.id).limit(1))
    if sample is not None:
        try:
            ring.unwrap(ring.current_id, bytes(sample))
        except CorruptData:
            raise KeyUnavailable(f"the master key (id {ring.current_id}) is not this "
                                 "appliance's (its client keys do not unwrap with it)") from None
    row = ApplianceKey(name=MASTER, key_id=ring.current_id, created_at=time.time())
    s.add(row)
    s.flush()
    return row


def _derive_base(s: OrmSession, ring: KeyRing, row: ApplianceKey | None, master_id: str) -> None:
    """Set the ring's derive base from the 'derive' row, made first if missing: random
    for a new appliance; else the master key, which every derived key came from so far."""
    if row is not None:
        try:
            ring.set_derive_base(ring.unwrap(row.master_key_id, bytes(row.wrapped or b"")))
        except UnknownKey as e:
            raise KeyUnavailable(f"the master key (id {ring.current_id}) cannot open the "
                                 f"appliance's derived keys: {e}") from None
        return
    used = s.scalar(select(exists().where(Client.id.isnot(None)))) or \
        s.scalar(select(exists().where(AuditEvent.id.isnot(None))))
    base = ring.master(ring.current_id) if used else crypto.new_key()
    wrapping = wrapping_id(s.connection(), ring)
    s.add(ApplianceKey(name=DERIVE, key_id=new_key_id(), wrapped=ring.wrap(wrapping, base),
                       master_key_id=wrapping, created_at=time.time()))
    s.flush()
    ring.set_derive_base(base)


# -- master-wrapped keys ---------------------------------------------------------------------

def wrapping_id(db: HotPath, ring: KeyRing) -> str:
    """The master key id new master-wrapped keys get: the next key during a rotation,
    else the current one. Read with the rows share-locked (PostgreSQL) until the
    caller's transaction ends, so that a rotation cannot finish in between; the ring
    reloads if it does not hold the key yet."""
    ids: dict[str, str] = {str(name): str(key_id)
                           for name, key_id in db.execute(_WRAPPING).all()}
    chosen: str = ids.get(NEXT) or ids.get(MASTER) or ring.current_id
    ring.master(chosen)
    return chosen


def new_client_key(db: HotPath, ring: KeyRing) -> dict[str, Any]:
    """The key columns of a new client (key_id, wrapped_key, master_key_id)."""
    master_id = wrapping_id(db, ring)
    return {"key_id": new_key_id(), "master_key_id": master_id,
            "wrapped_key": ring.wrap(master_id, crypto.new_key())}


# -- client and data keys --------------------------------------------------------------------

def remember_row(ring: KeyRing, row: ClientKeys) -> None:
    """Unwrap and remember the client keys of `row` (current and next)."""
    current = ring.unwrap(row.master_key_id, row.wrapped_key)
    digest_key = client_digest_key(current) if row.wrapped_digest_key is None else \
        ring.unwrap(row.master_key_id, row.wrapped_digest_key)
    ring.remember(row.key_id, current, digest_key)
    if row.next_key_id is not None and row.next_wrapped_key is not None:
        ring.remember(row.next_key_id, ring.unwrap(row.master_key_id, row.next_wrapped_key),
                      digest_key)


def client_key(db: HotPath, ring: KeyRing, client_id: int, key_id: str
               ) -> tuple[bytes, bytes] | None:
    """(client key, digest key) of client key `key_id` of the client, or None if its
    row (read again on a miss) no longer has that key."""
    hit = ring.remembered(key_id)
    if hit is None:
        row = client_keys(db, client_id)
        if row is not None and key_id in (row.key_id, row.next_key_id):
            remember_row(ring, row)
            hit = ring.remembered(key_id)
    return hit


def data_key(db: HotPath, ring: KeyRing, client_id: int, version_id: int,
             client_key_id: str, wrapped: bytes) -> bytes:
    """The data key of a version: by the client key its row names; if that key is
    gone (the row was rewrapped since it was read), by the row read again."""
    found = client_key(db, ring, client_id, client_key_id)
    if found is None:
        row = db.execute(_VERSION_KEY, {"version_id": version_id}).first()
        if row is not None:
            wrapped, found = bytes(row[1]), client_key(db, ring, client_id, row[0])
    if found is None:
        raise CorruptData(f"the data key of version {version_id} is wrapped by client key "
                          f"{client_key_id}, which its client does not have")
    return crypto.unwrap_key(found[0], wrapped)


class WriteKey(NamedTuple):
    """The client key new versions of an upload are wrapped by, and the digest key."""
    client_key_id: str
    client_key: bytes
    digest_key: bytes


def write_key(db: HotPath, ring: KeyRing, client_id: int) -> WriteKey:
    """The key for new versions of the client: its next key during a rotation, else
    its current key (read now: another process may be rotating)."""
    row = client_keys(db, client_id)
    if row is None:
        raise CorruptData(f"client {client_id} has no key")
    client, digest_key = _preferred(ring, row)
    return WriteKey(row.next_key_id or row.key_id, client, digest_key)


def _preferred(ring: KeyRing, row: ClientKeys) -> tuple[bytes, bytes]:
    found = ring.remembered(row.next_key_id or row.key_id)
    if found is None:
        remember_row(ring, row)
        found = ring.remembered(row.next_key_id or row.key_id)
    assert found is not None
    return found


def committed_key(db: HotPath, ring: KeyRing, client_id: int, key_id: str, data_key: bytes,
                  wrapped: bytes) -> tuple[str, bytes]:
    """(client key id, wrapped data key) to commit a version whose data key `wrapped`
    was wrapped by client key `key_id`. Read in the commit's transaction, after the
    client's row was locked: wrapped again by the client's preferred key if that is
    not `key_id` (a rotation began or finished meanwhile), so that no version commits
    under a key a rotation's finish has dropped."""
    row = client_keys(db, client_id)
    if row is None or key_id == (row.next_key_id or row.key_id):
        return key_id, wrapped
    client, _ = _preferred(ring, row)
    return row.next_key_id or row.key_id, crypto.wrap_key(client, data_key)


def held_client_keys(db: HotPath, ring: KeyRing, client_id: int) -> dict[str, bytes]:
    """{key id: client key} of the client's current and next key."""
    row = client_keys(db, client_id)
    if row is None:
        return {}
    remember_row(ring, row)
    ids = [i for i in (row.key_id, row.next_key_id) if i is not None]
    return {i: found[0] for i in ids if (found := ring.remembered(i)) is not None}


def drop_next(s: OrmSession) -> None:
    s.execute(delete(ApplianceKey).where(ApplianceKey.name == NEXT))


def insert_key(s: OrmSession, name: str, key_id: str, wrapped: bytes | None,
               master_id: str | None) -> None:
    s.execute(insert(_KEYS).values(name=name, key_id=key_id, wrapped=wrapped,
                                   master_key_id=master_id, created_at=time.time()))


def data_key_now(db: Database, ring: KeyRing, client_id: int, version_id: int,
                 client_key_id: str, wrapped: bytes) -> bytes:
    """data_key for a caller outside a transaction (an export, the scrub): a read of
    its own only if the client key is not remembered."""
    found = ring.remembered(client_key_id)
    if found is not None:
        return crypto.unwrap_key(found[0], bytes(wrapped))
    with db.read() as s:
        return data_key(s.connection(), ring, client_id, version_id, client_key_id,
                        bytes(wrapped))
