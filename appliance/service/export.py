"""Client export (data portability), mixed into Admin: a tar of a client's decrypted
current tree, streamed as it is read, with `manifest.json` as its last member.

Layout of the tar: the tree under `<client>/` (folders included, modification
times kept), with `versions` every version of every current file under
`<client>/@versions/<path>/<name as the @versions view names it>`, and
`manifest.json` beside the `<client>/` folder (so that no file of the client can
clash with it). Deleted items (the trash) are not exported.

The listing is read in one transaction and is what the export holds: a file
overwritten meanwhile is exported as it was listed (its old version is kept as a
version); a version that retention removed meanwhile is left out and counted as
`skipped`. Memory grows with the number of files, never with their size.

Written to FILE.partial and renamed to FILE once complete and durable; on any
failure (an unwritable place, a full disk, a blob failing authentication) the
partial file is removed and the error says what happened.
"""
import dataclasses
import datetime
import errno
import hashlib
import io
import json
import os
import tarfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from sqlalchemy import select
from sqlalchemy.orm import Session as OrmSession

from strongroom.appliance.db import repo
from strongroom.appliance.db.models import Node, Version
from strongroom.appliance.errors import BadRequest, Conflict, CorruptData, NoSpace
from strongroom.appliance.service import keys_store
from strongroom.appliance.service.admin_base import AdminBase, Json
from strongroom.appliance.service.history import VIEW, version_name
from strongroom.appliance.service.meter import NO_METER, Meter
from strongroom.providers.base import BlobReader
from strongroom.providers.fsutil import fsync_dir

MANIFEST = "manifest.json"
_IN_BATCH = 500
_NAME_MAX = 255
_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


@dataclasses.dataclass(frozen=True)
class Blob:
    """One version to export, copied out of its row."""
    id: int
    blob_id: str
    size: int
    holes: str | None
    wrapped_key: bytes
    mtime: float
    client_key_id: str


@dataclasses.dataclass(frozen=True)
class Item:
    """One tar member: a folder (blob None) or a file's version."""
    member: str
    path: str             # the tree path, as the CLI names it: /<client>/...
    mtime: float
    blob: Blob | None
    current: bool = True  # False: a member of @versions


class ExportMixin(AdminBase):
    def export_client(self, name: str, to: Path | IO[bytes], *, versions: bool = False,
                      meter: Meter = NO_METER) -> Json:
        """Export client `name` to the file `to` (FILE.partial first, FILE once it is
        complete; an existing FILE is refused) or to the binary stream `to`; see the
        module docstring. Returns counts; audited (client-export)."""
        with self.app.db.read() as s:
            client = self._client_row(s, name)
            client_key, items = client.id, list(_listing(s, client.id, name, versions))
        meter.start(sum(i.blob.size for i in items if i.blob is not None))
        if isinstance(to, Path):
            summary = _to_file(to, lambda out: self._write(out, client_key, items, meter))
        else:
            summary = self._write(to, client_key, items, meter, stream=True)
        summary.update(client=name, to="-" if not isinstance(to, Path) else str(to),
                       with_versions=versions)
        with self.app.db.write() as s:
            self._audit(s, "client-export", f"/{name}",
                        f"files={summary['files']} bytes={summary['bytes']} "
                        f"versions={'yes' if versions else 'no'}")
        return summary

    def _write(self, out: IO[bytes], client_key: int, items: list[Item], meter: Meter,
               *, stream: bool = False) -> Json:
        """Stream `items` and then the manifest into a tar on `out`."""
        files: list[Json] = []
        history: list[Json] = []
        counts = {"folders": 0, "files": 0, "versions": 0, "skipped": 0, "bytes": 0}
        with tarfile.open(fileobj=out, mode="w|" if stream else "w",
                          format=tarfile.PAX_FORMAT) as tar:
            for item in items:
                if item.blob is None:
                    tar.addfile(_info(item.member, item.mtime, None))
                    counts["folders"] += item.path.count("/") > 1   # not the tree's own
                    continue
                sha = self._add_file(tar, client_key, item, meter)
                if sha is None:
                    counts["skipped"] += 1
                    continue
                counts["files" if item.current else "versions"] += 1
                counts["bytes"] += item.blob.size
                (files if item.current else history).append(_entry(item, sha))
            manifest = _manifest_bytes(files, history)
            tar.addfile(_info(MANIFEST, time.time(), len(manifest)), io.BytesIO(manifest))
        return dict(counts)

    def _add_file(self, tar: tarfile.TarFile, client_key: int, item: Item,
                  meter: Meter) -> str | None:
        """Add one version's plaintext; its sha256, or None if it vanished meanwhile."""
        blob = item.blob
        assert blob is not None
        try:
            key = keys_store.data_key_now(self.app.db, self.app.keyring, client_key, blob.id,
                                          blob.client_key_id, blob.wrapped_key)
            reader = self.app.provider.open_blob(blob.blob_id, key, blob.size, blob.holes)
        except CorruptData as e:
            if not self._exists(blob.id):
                return None     # removed by retention after the listing: not an error
            raise CorruptData(f"cannot export {item.path} (version {blob.id}): {e}") from None
        source = _Reading(reader, blob.size, meter)
        try:
            tar.addfile(_info(item.member, blob.mtime, blob.size), source)
        except CorruptData as e:
            raise CorruptData(f"cannot export {item.path} (version {blob.id}): {e}") from None
        finally:
            reader.close()
        return source.sha.hexdigest()

    def _exists(self, version_id: int) -> bool:
        with self.app.db.read() as s:
            return s.get(Version, version_id) is not None


def _listing(s: OrmSession, client_id: int, name: str, versions: bool) -> Iterator[Item]:
    """Folders and current files, breadth first; then, with `versions`, every version
    of every current file (the @versions view's names)."""
    root = repo.root_node(s, client_id)
    yield Item(f"{name}/", f"/{name}", root.modified_at, None)   # there even when empty
    folders, files = [(root, "")], list[tuple[Node, str]]()
    while folders:
        folder, rel = folders.pop(0)
        for node, version in repo.children_with_versions(s, folder.id):
            child = f"{rel}/{node.name}"
            if node.is_dir:
                folders.append((node, child))
                yield Item(f"{name}{child}/", f"/{name}{child}", node.modified_at, None)
            elif version is not None:
                files.append((node, child))
                yield Item(f"{name}{child}", f"/{name}{child}", version.mtime, _blob(version))
    if versions:
        yield from _history(s, files, name)


def _history(s: OrmSession, files: list[tuple[Node, str]], name: str) -> Iterator[Item]:
    for i in range(0, len(files), _IN_BATCH):
        batch = dict((node.id, (node, rel)) for node, rel in files[i:i + _IN_BATCH])
        rows = s.scalars(select(Version).where(Version.node_id.in_(list(batch)))
                         .order_by(Version.node_id, Version.id))
        for v in rows:
            node, rel = batch[v.node_id]
            folder = rel.rsplit("/", 1)[0]
            member = f"{name}/{VIEW}{folder}/{node.name}/{_fitting(version_name(v, node.name))}"
            yield Item(member, f"/{name}{rel}", v.mtime, _blob(v), current=False)


def _fitting(member_name: str) -> str:
    """`member_name` cut to NAME_MAX (255 bytes, whole characters): a version's view
    name puts its date and id before a name that may itself be 255 bytes, and a longer
    member stops tar (Python's and GNU's) with "File name too long". The id before the
    name keeps the cut names apart; the manifest gives each one's path."""
    encoded = member_name.encode()
    if len(encoded) <= _NAME_MAX:
        return member_name
    return encoded[:_NAME_MAX].decode(errors="ignore")


def _blob(v: Version) -> Blob:
    return Blob(v.id, v.blob_id, v.size, v.holes, v.wrapped_key, v.mtime, v.client_key_id)


def _entry(item: Item, sha: str) -> Json:
    assert item.blob is not None
    entry: Json = {"path": item.path, "member": item.member, "size": item.blob.size,
                   "sha256": sha, "modified": _iso(item.blob.mtime), "version": item.blob.id}
    return entry


def _manifest_bytes(files: list[Json], history: list[Json]) -> bytes:
    """The manifest: each current file (with the ids of all its exported versions
    when there are any) and each exported version."""
    ids: dict[str, list[int]] = {}
    for v in history:
        ids.setdefault(v["path"], []).append(v["version"])
    for f in files:
        f["versions"] = ids.get(f["path"], [f["version"]])
    doc = {"format": "strongroom-export-1", "exported_at": _iso(time.time()),
           "files": files, "versions": history}
    return json.dumps(doc, indent=1, ensure_ascii=False).encode()


def _iso(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).isoformat(
        timespec="seconds")


def _info(member: str, mtime: float, size: int | None) -> tarfile.TarInfo:
    info = tarfile.TarInfo(member.rstrip("/"))
    info.mtime = mtime if mtime == int(mtime) else round(mtime, 6)
    if size is None:
        info.type, info.mode = tarfile.DIRTYPE, 0o755
    else:
        info.size, info.mode = size, 0o644
    return info


class _Reading:
    """A blob as the file object tarfile reads from: hashed and metered on the way."""

    def __init__(self, reader: BlobReader, size: int, meter: Meter) -> None:
        self.reader, self.size, self.meter = reader, size, meter
        self.offset = 0
        self.sha = hashlib.sha256()

    def read(self, n: int = -1, /) -> bytes:
        if n < 0:
            n = self.size - self.offset
        data = self.reader.read(self.offset, min(n, self.size - self.offset))
        self.offset += len(data)
        self.sha.update(data)
        self.meter.advance(len(data))
        return data


def _to_file(to: Path, write: Callable[[IO[bytes]], Json]) -> Json:
    """Run `write(out)` on TO.partial, then make it durable and rename it to TO;
    on any failure remove TO.partial and raise one clear error."""
    if to.exists():
        raise Conflict(f"{to} exists already: remove it or choose another name")
    partial = to.with_name(to.name + ".partial")
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        raise Conflict(f"{partial} exists: another export to {to} may be running "
                       "(if not, remove it)") from None
    except OSError as e:
        raise BadRequest(f"cannot write {to}: {e.strerror}") from None   # nothing was made
    try:
        with os.fdopen(fd, "wb") as out:
            summary: Json = write(out)
            out.flush()
            os.fsync(out.fileno())
        os.rename(partial, to)
        fsync_dir(to.parent)
    except BaseException as e:
        partial.unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise _write_error(partial, e) from None
        raise
    summary["tar_bytes"] = to.stat().st_size
    return summary


def _write_error(partial: Path, e: OSError) -> Exception:
    if e.errno in _FULL:
        return NoSpace(f"no space left for {partial} (the partial export was removed)")
    return BadRequest(f"cannot write {partial}: {e.strerror or e}")

