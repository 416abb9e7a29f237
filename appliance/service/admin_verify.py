"""The scrub (`doctor --verify`), mixed into Admin: decrypt and authenticate every
chunk of every version's blob (current, older and in the trash), or of a random
sample of versions, and name each damaged one with its client and path.

Rows are read in batches by id and each blob is read chunk by chunk, outside any
transaction: memory stays flat whatever the store's size. Only the versions that
existed when the scrub began are looked at; one that retention removes while the
scrub runs is not damage (its blob may be gone: the row is asked again).
"""
import dataclasses
import random
import re
import time
from collections.abc import Iterator
from typing import TypedDict

from sqlalchemy import func, select
from sqlalchemy.orm import Session as OrmSession

from strongroom.appliance.db.models import Client, Node, Version
from strongroom.appliance.errors import BadRequest
from strongroom.appliance.service import keys_store
from strongroom.appliance.service.admin_base import AdminBase
from strongroom.appliance.service.meter import NO_METER, Meter
from strongroom.providers.base import BlobReader
from strongroom.providers.errors import CorruptData, StorageError

_IN_BATCH = 500
_CHUNK = re.compile(r"^chunk (\d+) failed authentication$")


class Damage(TypedDict):
    client: str
    path: str           # the file's tree path (where it was, for one in the trash)
    deleted: bool       # the file is in the trash
    version: int
    blob: str
    problem: str


class Scrub(TypedDict):
    """What `doctor --verify` adds to the doctor's report (--json as it is)."""
    versions: int        # versions when the scrub began
    sample_percent: float
    checked: int         # versions read
    bytes: int           # plaintext bytes authenticated
    seconds: float
    damaged: list[Damage]
    ok: bool


@dataclasses.dataclass(frozen=True)
class _Row:
    version: int
    node: int
    blob_id: str
    size: int
    holes: str | None
    data_key: bytes       # wrapped
    client_key_id: str    # the client key wrapping it
    client_id: int
    client: str


class VerifyMixin(AdminBase):
    def verify_blobs(self, sample: float = 100.0, *, meter: Meter = NO_METER,
                     rng: random.Random | None = None) -> Scrub:
        """Scrub `sample` percent of the versions (0 < sample <= 100; a random choice
        of exactly that share, rounded, at least one), reporting to `meter` in
        versions."""
        if not 0 < sample <= 100:
            raise BadRequest(f"--sample: a percentage above 0 and at most 100; got {sample:g}")
        began = time.monotonic()
        with self.app.db.read() as s:
            total, last = s.execute(select(func.count(Version.id), func.max(Version.id))).one()
        wanted = 0 if not total else max(1, round(total * sample / 100))
        meter.start(wanted)
        report = Scrub(versions=total, sample_percent=sample, checked=0, bytes=0, seconds=0.0,
                       damaged=[], ok=True)
        for row in _chosen(self._rows(last or 0), total, wanted, rng or random.Random()):
            problem, read = self._check(row)
            if problem is not None and self._gone(row.version):
                continue
            report["checked"] += 1
            report["bytes"] += read
            if problem is not None:
                report["damaged"].append(self._damage(row, problem))
            meter.advance()
        report["ok"] = not report["damaged"]
        report["seconds"] = round(time.monotonic() - began, 3)
        return report

    def _rows(self, last: int) -> Iterator[_Row]:
        """The versions with ids up to `last`, in batches, each batch its own read."""
        after = 0
        while True:
            with self.app.db.read() as s:
                batch = [_Row(*r) for r in s.execute(
                    select(Version.id, Version.node_id, Version.blob_id, Version.size,
                           Version.holes, Version.wrapped_key, Version.client_key_id,
                           Client.id, Client.name)
                    .join(Node, Node.id == Version.node_id)
                    .join(Client, Client.id == Node.client_id)
                    .where(Version.id > after, Version.id <= last)
                    .order_by(Version.id).limit(_IN_BATCH))]
            if not batch:
                return
            yield from batch
            after = batch[-1].version

    def _check(self, row: _Row) -> tuple[str | None, int]:
        """(what is wrong or None, plaintext bytes read) for one version's blob."""
        try:
            key = keys_store.data_key_now(self.app.db, self.app.keyring, row.client_id,
                                          row.version, row.client_key_id, row.data_key)
            reader = self.app.provider.open_blob(row.blob_id, key, row.size, row.holes)
        except StorageError as e:    # damaged (CorruptData) or unreadable: reported alike
            return _described(str(e)), 0
        except OSError as e:
            return f"cannot read the blob: {e.strerror or e}", 0
        try:
            return _read_all(reader, row.size, self.app.provider.chunk_size)
        finally:
            reader.close()

    def _gone(self, version_id: int) -> bool:
        with self.app.db.read() as s:
            return s.get(Version, version_id) is None

    def _damage(self, row: _Row, problem: str) -> Damage:
        with self.app.db.read() as s:
            rel, deleted = _path_of(s, row.node)
        return Damage(client=row.client, path=f"/{row.client}{rel}", deleted=deleted,
                      version=row.version, blob=row.blob_id, problem=problem)


def _chosen(rows: Iterator[_Row], total: int, wanted: int,
            rng: random.Random) -> Iterator[_Row]:
    """Exactly `wanted` of the `total` rows, each as likely as any other, in one pass
    (Knuth's selection sampling: take a row with probability still-wanted / left)."""
    seen = taken = 0
    for row in rows:
        left = total - seen
        seen += 1
        if taken < wanted and (left <= wanted - taken or rng.random() * left < wanted - taken):
            taken += 1
            yield row


def _read_all(reader: BlobReader, size: int, step: int) -> tuple[str | None, int]:
    """Read and authenticate every chunk; name the first one that fails, and how many."""
    failed: list[str] = []
    read = 0
    for offset in range(0, size, step):
        try:
            read += len(reader.read(offset, step))
        except CorruptData as e:
            failed.append(str(e))
        except OSError as e:          # a failing disk (EIO): exactly what a scrub is for
            failed.append(f"read error at byte {offset}: {e.strerror or e}")
    if not failed:
        return None, read
    more = f" ({len(failed)} chunks in all)" if len(failed) > 1 else ""
    return _described(failed[0]) + more, read


def _described(problem: str) -> str:
    """The store's words, made plain for the ones an admin meets most."""
    if problem == "blob file is missing":
        return "blob is missing"
    if problem == "blob length does not match the recorded size":
        return "blob is truncated or has the wrong length"
    m = _CHUNK.match(problem)
    return f"chunk {m.group(1)} fails authentication" if m else problem


def _path_of(s: OrmSession, node_id: int) -> tuple[str, bool]:
    """(the node's path below its client's root, whether it or a folder above it is
    deleted)."""
    names: list[str] = []
    deleted = False
    node = s.get(Node, node_id)
    while node is not None and node.parent_id is not None:
        names.append(node.name)
        deleted = deleted or node.deleted_at is not None
        node = s.get(Node, node.parent_id)
    return "/" + "/".join(reversed(names)), deleted
