"""New versions: starting an upload (limits decided up front) and publishing it
once its blob is durable, for the Session. The streaming itself is
appliance.service.transfer's `Upload`."""
import functools
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeAlias

from strongroom.appliance.db import repo
from strongroom.appliance.db.hotpath import HotPath
from strongroom.appliance.db.models import Node, Version
from strongroom.appliance.errors import (ConcurrentChange, Conflict, NoSpace, QuotaExceeded,
                                         TooLarge)
from strongroom.appliance.notify.ignore import ignored
from strongroom.appliance.notify.outbox import Change
from strongroom.appliance.service import keys_store, locking, saving
from strongroom.appliance.service.entry import Entry, file_entry
from strongroom.appliance.service.paths import RawPath, Target
from strongroom.appliance.service.spine import Spine
from strongroom.appliance.service.transfer import Limits, Upload, human
from strongroom.providers import crypto
from strongroom.providers.base import BlobReader, BlobWriter

if TYPE_CHECKING:
    from strongroom.appliance.service.service import Session

# keyed(db, client id, writer, wrapped data key) -> (client key id, wrapped data key):
# how a version commits its data key (Writes._committed_key), in the commit's transaction.
Keyed: TypeAlias = Callable[[HotPath, int, BlobWriter, bytes], tuple[str, bytes]]


class Writes:
    """Uploads of one Session (`session`, handed to each Upload) through its spine."""

    def __init__(self, session: "Session", spine: Spine):
        self._session, self._spine = session, spine
        self._app = spine.app

    def open_write(self, path: RawPath, *, truncate: bool, size: int | None,
                   metered: bool) -> Upload:
        """See Session.open_write."""
        spine = self._spine
        t = spine.target(path)
        ring = self._app.keyring
        with spine.transaction("open-write", t, write=False, audited=False, right="write",
                               fast=True) as (db, client):
            _, node, base = spine.place_rows(db, client, t, recall=True)
            if node is not None and node.is_dir:
                raise Conflict(f"is a folder: {spine.view_path(t)}")
            locking.check_unlocked(db, spine, t, new=node is None)
            quota = None if client.quota_bytes is None else (
                client.quota_bytes - repo.used_bytes(db, client.id) + (base.size if base else 0))
            base_key = None if base is None or truncate else keys_store.data_key(
                db, ring, client.id, base.id, base.client_key_id, base.wrapped_key)
            key = keys_store.write_key(db, ring, client.id)
        limits = self._limits(quota, size)
        base_reader: tuple[BlobReader, int] | None = None
        if base is not None and base_key is not None:
            base_reader = (self._app.provider.open_blob(base.blob_id, base_key, base.size,
                                                        base.holes), base.size)
        data_keys: dict[str, bytes] = {}     # by blob id, for the commit (committed_key)

        def make_writer() -> tuple[BlobWriter, bytes]:
            """A blob writer under a fresh data key, and that key wrapped for the client."""
            data_key = crypto.new_key()
            writer = self._app.provider.create_blob(data_key, key.digest_key)
            data_keys[writer.blob_id] = data_key
            return writer, crypto.wrap_key(key.client_key, data_key)

        publish = functools.partial(self.commit, t, functools.partial(
            self._committed_key, key.client_key_id, data_keys))
        return Upload(self._app.provider, make_writer, publish, base_reader, limits, metrics=self._app.metrics if metered else None,
                      protocol=spine.protocol)

    def _committed_key(self, key_id: str, data_keys: dict[str, bytes], db: HotPath,
                       client_id: int, writer: BlobWriter, wrapped: bytes) -> tuple[str, bytes]:
        return keys_store.committed_key(db, self._app.keyring, client_id, key_id,
                                        data_keys[writer.blob_id], wrapped)

    def _limits(self, quota: int | None, size: int | None) -> Limits:
        """The limits of a new upload; refuses one that cannot fit as announced, or
        any while free space is below the reserve."""
        storage = self._app.config.storage
        total, free = self._app.provider.space()
        limits = Limits(quota, storage.max_file_size, storage.reserve.of(total))
        if size is not None:
            if size > limits.max_size:
                raise TooLarge(f"file too large: at most {human(limits.max_size)} are allowed")
            if limits.quota is not None and size > limits.quota:
                raise QuotaExceeded("the client's quota is exhausted")
        if free - (size or 0) < limits.reserve:
            raise NoSpace("not enough free space on the server")
        return limits

    def commit(self, t: Target, keyed: Keyed, writer: BlobWriter, wrapped_key: bytes,
               mtime: float | None) -> Entry:
        """Publish a durable blob as the new current version, in one transaction.

        Two uploads creating the same new file race on the unique name index (on
        PostgreSQL); the loser retries and becomes a version of the winner's file. A
        transaction the database gave up on under contention is run again too
        (Spine.retried): the blob is durable and stays until it is published.
        """
        publish = functools.partial(self._published, t, keyed, writer, wrapped_key, mtime)
        for _ in range(2):
            try:
                return self._spine.retried(publish)
            except ConcurrentChange:
                pass
        return self._spine.retried(publish)

    def _published(self, t: Target, keyed: Keyed, writer: BlobWriter, wrapped_key: bytes,
                   mtime: float | None) -> Entry:
        """_publish, then the blobs of the versions it dropped go: only now that the
        transaction which stopped referring to them has committed."""
        dropped: list[str] = []
        entry = self._publish(t, keyed, writer, wrapped_key, mtime, dropped)
        for blob_id in dropped:
            self._app.provider.delete_blob(blob_id)
        return entry

    def _publish(self, t: Target, keyed: Keyed, writer: BlobWriter, wrapped_key: bytes,
                 mtime: float | None, dropped: list[str]) -> Entry:
        """The new version in one transaction; the blob ids it no longer needs (a
        litter file's older versions: appliance.service.saving) go into `dropped`."""
        now, spine = time.time(), self._spine
        with spine.transaction("write", t, write=True, right="write", fast=True) as (db, client):
            parent, found, old = spine.place_rows(db, client, t)
            if found is not None and found.is_dir:
                raise Conflict(f"a folder appeared at {spine.view_path(t)} during the upload")
            locking.check_unlocked(db, spine, t, new=found is None)   # taken meanwhile?
            # a transient record of a new row, for the Entry
            key_id, wrapped_key = keyed(db, client.id, writer, wrapped_key)
            node = found or Node(id=repo.add_file(db, client.id, parent.id, t.rel[-1], now),
                                 name=t.rel[-1], is_dir=False)
            version = Version(node_id=node.id, blob_id=writer.blob_id, size=writer.size,
                              digest=writer.digest(), holes=writer.holes(),
                              wrapped_key=wrapped_key, client_key_id=key_id,
                              mtime=mtime if mtime is not None else now, created_at=now,
                              author=spine.principal.login)
            if not repo.charge(db, client.id, version.size - (old.size if old else 0)):
                raise QuotaExceeded("the client's quota is exhausted")
            repo.make_current(db, node.id, repo.add_version(db, version), now)
            patterns = self._app.config.notify.ignore
            if found is None:
                saving.continue_history(db, spine.principal.login, patterns, node.id,
                                        parent.id, t.canonical, now)
            elif ignored(t.rel[-1], patterns):
                dropped += saving.drop_older(db, node.id, version.id)
            spine.notify(db, Change(client.id, node.id, t.rel, "changed" if found else "added",
                                    size=version.size))
            return file_entry(spine.view_path(t), node, version)
