"""Once after the upgrade to keyed digests: the plain SHA-256 digests of versions
written before are rewritten as keyed digests of themselves (providers.digest
rekey_legacy), so that nobody with only the database can confirm a known document.

The migration cannot do it (it has no keys), so App does at startup, in batches.
It is idempotent and safe in several processes at once: a row changes only from
its legacy value, and a converted value is never legacy again. A partial index
holds exactly the rows left, so once they are gone this costs one empty lookup.
"""
import logging

from sqlalchemy import Table, bindparam, select, text

from strongroom.appliance.db.engine import Database
from strongroom.appliance.db.hotpath import HotPath
from strongroom.appliance.db.models import Base, Client, Node, Version
from strongroom.providers import digest
from strongroom.providers.errors import CorruptData
from strongroom.providers.keys import KeyRing

log = logging.getLogger("strongroom")
BATCH = 500

# Literally the partial index's condition (ix_versions_legacy_digest), so that the
# database uses it: a bound parameter would hide the match.
_LEFT = (select(Version.id, Version.digest, Node.client_id, Version.client_key_id)
         .join(Node, Node.id == Version.node_id).join(Client, Client.id == Node.client_id)
         .where(text("versions.digest NOT LIKE '%:%'"), Version.id > bindparam("after"))
         .order_by(Version.id).limit(BATCH))
_VERSIONS: Table = Base.metadata.tables[Version.__tablename__]
_CONVERT = (_VERSIONS.update()
            .where(Version.id == bindparam("vid"), Version.digest == bindparam("old"))
            .values(digest=bindparam("new")))


def rekey_legacy_digests(db: Database, keyring: KeyRing) -> int:
    """Convert every legacy digest; return how many this call converted."""
    keys: dict[str, bytes | None] = {}
    after, converted = 0, 0
    while True:
        with db.write() as s:
            rows = s.execute(_LEFT, {"after": after}).all()
            changes = [{"vid": vid, "old": old, "new": digest.rekey_legacy(key, old)}
                       for vid, old, client_id, key_id in rows
                       if (key := _key(s.connection(), keyring, keys, client_id, key_id))
                       is not None]
            if changes:
                # on the session's connection: a Core UPDATE, whose result has a rowcount
                converted += s.connection().execute(_CONVERT, changes).rowcount or 0
        if len(rows) < BATCH:
            return converted
        after = rows[-1][0]


def _key(db: HotPath, keyring: KeyRing, keys: dict[str, bytes | None], client_id: int,
         key_id: str) -> bytes | None:
    """The digest key of a client, or None (logged once) if its key does not unwrap."""
    from strongroom.appliance.service.keys_store import client_key
    if key_id not in keys:
        try:
            found = client_key(db, keyring, client_id, key_id)
        except CorruptData:
            found = None
        if found is None:
            log.warning("a client key does not unwrap: its versions keep legacy digests")
        keys[key_id] = None if found is None else found[1]
    return keys[key_id]
