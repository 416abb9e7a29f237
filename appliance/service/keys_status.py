"""What `keys status` shows and `doctor` checks of the keys: key ids, how many keys
each wraps, rotations in progress and what is left of them."""
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session as OrmSession

from strongroom.appliance.db.models import ApplianceKey, Client, Node, Version
from strongroom.appliance.service.keys_store import DERIVE, MASTER, NEXT
from strongroom.providers.errors import CorruptData

if TYPE_CHECKING:
    from strongroom.appliance.app import App

Json = dict[str, Any]


def status(app: "App") -> Json:
    """{master_key_id, source, source_key_id, wrapped_by_master: {id: count},
    clients: [{name, key_id, next_key_id, data_keys: {id: count}}], rotations: [line]}"""
    with app.db.read() as s:
        rows = {r.name: r for r in s.scalars(select(ApplianceKey))}
        master = rows[MASTER].key_id if MASTER in rows else None
        wrapped: dict[str, int] = {str(k): int(n) for k, n in s.execute(
            select(Client.master_key_id, func.count()).group_by(Client.master_key_id)).all()}
        for row in rows.values():
            if row.wrapped is not None and row.master_key_id is not None:
                wrapped[row.master_key_id] = wrapped.get(row.master_key_id, 0) + 1
        clients = _clients(s)
        return {"master_key_id": master, "source": app.key_source.describe(),
                "source_key_id": app.keyring.current_id,
                "next_master_key_id": rows[NEXT].key_id if NEXT in rows else None,
                "wrapped_by_master": wrapped, "clients": clients,
                "rotations": _rotations(app, master, rows.get(NEXT), wrapped, clients)}


def _clients(s: OrmSession) -> list[Json]:
    counts: dict[str, int] = {str(k): int(n) for k, n in s.execute(
        select(Version.client_key_id, func.count()).group_by(Version.client_key_id)).all()}
    return [{"name": c.name, "key_id": c.key_id, "next_key_id": c.next_key_id,
             "master_key_id": c.master_key_id,
             "data_keys": {i: counts.get(i, 0) for i in (c.key_id, c.next_key_id) if i}}
            for c in s.scalars(select(Client).order_by(Client.name))]


def _rotations(app: "App", master: str | None, nxt: ApplianceKey | None,
               wrapped: dict[str, int], clients: list[Json]) -> list[str]:
    """One line per rotation in progress, saying what is left and what finishes it."""
    lines = []
    if nxt is not None and master == nxt.key_id:
        if app.keyring.current_id != master:
            lines.append(f"master key rotation to {master}: every key is rewrapped, but "
                         f"{app.key_source.describe()} still holds the old key "
                         f"{app.keyring.current_id}; put the new key there (systemd-creds "
                         "encrypt) and restart, or run 'strongroom keys rotate-master' "
                         "if it can be written")
        else:
            lines.append(f"master key rotation to {master}: finished but for forgetting "
                         "the old key; the next start or 'strongroom keys rotate-master' "
                         "does")
    elif nxt is not None:
        left = sum(n for k, n in wrapped.items() if k != nxt.key_id)
        lines.append(f"master key rotation {master} -> {nxt.key_id}: {left} keys left "
                     "to rewrap; 'strongroom keys rotate-master' finishes it")
    for c in clients:
        if c["next_key_id"]:
            lines.append(f"client key rotation of {c['name']} {c['key_id']} -> "
                         f"{c['next_key_id']}: {c['data_keys'].get(c['key_id'], 0)} data "
                         f"keys left; 'strongroom keys rotate-client {c['name']}' finishes it")
    return lines


def problems(app: "App") -> list[str]:
    """What `doctor` reports of the keys: master key ids not held, data keys wrapped by
    a key their client does not have, rotations left half done."""
    found = []
    with app.db.read() as s:
        ids = set(s.scalars(select(Client.master_key_id).distinct())) | set(
            s.scalars(select(ApplianceKey.master_key_id).where(ApplianceKey.name == DERIVE)))
        for key_id in sorted(i for i in ids if i is not None):
            try:
                app.keyring.master(key_id)
            except CorruptData:
                found.append(f"keys are wrapped by master key id {key_id}, which is not held")
        stray = s.execute(select(Client.name, func.count()).select_from(Version)
                          .join(Node, Node.id == Version.node_id)
                          .join(Client, Client.id == Node.client_id)
                          .where(Version.client_key_id != Client.key_id, or_(
                              Client.next_key_id.is_(None),
                              and_(Client.next_key_id.isnot(None),
                                   Version.client_key_id != Client.next_key_id)))
                          .group_by(Client.name)).all()
    found += [f"{n} data keys of {name} are wrapped by a key the client does not have"
              for name, n in stray]
    return found + [line for line in status(app)["rotations"]]
