"""The storage interface (providers/base.py) is the whole interface: real service
operations, on SQLite and PostgreSQL, against a provider that exposes only what the
ABCs declare. Anything else the service or the doctor reached for (a private
attribute, a method of the local provider alone) raises AttributeError here, so an
object-store provider that implements exactly the ABCs can take the local one's place."""
import inspect
import os

import pytest
from sqlalchemy import text

from strongroom.appliance.errors import Conflict, NotFound, Unsupported
from strongroom.appliance.service import consistency
from strongroom.providers import base
from strongroom.providers.base import Capabilities
from strongroom.providers.local import LocalProvider
from tests.support.sessions import admin_session, client_session, get, put

CHUNK = 256 * 1024
# The interfaces a provider hands out; what they return is wrapped in turn.
INTERFACES = [cls for _, cls in inspect.getmembers(base, inspect.isclass)
              if inspect.isabstract(cls) and cls.__module__ == base.__name__]


def declared(abc) -> set[str]:
    """The public members `abc` declares: methods, properties and annotated attributes."""
    names = set()
    for cls in abc.__mro__:
        if cls in (object,) or cls.__module__ == "abc":
            continue
        names |= {n for n in vars(cls) if not n.startswith("_")}
        names |= set(getattr(cls, "__annotations__", {}))
    return names


class DeclaredOnly:
    """`inner`, seen only through the members of its interface `abc`."""

    def __init__(self, inner, abc):
        object.__setattr__(self, "_inner", inner)
        object.__setattr__(self, "_members", declared(abc))
        object.__setattr__(self, "_abc", abc)

    def __getattr__(self, name):
        if name not in self._members:
            raise AttributeError(f"{self._abc.__name__} does not declare {name!r}")
        value = getattr(self._inner, name)
        return _wrapping(value) if callable(value) else value

    def __setattr__(self, name, value):
        raise AttributeError(f"{self._abc.__name__} declares no settable {name!r}")


def _wrapping(method):
    def call(*args, **kwargs):
        result = method(*args, **kwargs)
        for abc in INTERFACES:
            if isinstance(result, abc):
                return DeclaredOnly(result, abc)
        return result
    return call


@pytest.fixture
def acme(app):
    app.provider = DeclaredOnly(app.provider, base.StorageProvider)
    return client_session(app, "acme")


def content(n: int, seed: int = 0) -> bytes:
    return bytes((i * 7 + seed) % 251 for i in range(n))


def test_the_wrapper_refuses_what_is_not_declared(app):
    wrapped = DeclaredOnly(app.provider, base.StorageProvider)
    assert wrapped.chunk_size == CHUNK
    with pytest.raises(AttributeError):
        wrapped._path             # noqa: B018  private to the local provider
    with pytest.raises(AttributeError):
        wrapped.root              # noqa: B018  the local provider's folder


def test_uploads_reads_and_versions(acme):
    first, second = content(3 * CHUNK + 5), content(2 * CHUNK + 1, seed=3)
    put(acme, "/a.bin", first)
    assert get(acme, "/a.bin") == first
    handle = acme.open_read("/a.bin")
    try:       # a range across a chunk boundary
        assert handle.read(CHUNK - 3, 10) == first[CHUNK - 3:CHUNK + 7]
        assert handle.data_ranges() == [(0, len(first))]
    finally:
        handle.close()
    put(acme, "/a.bin", second)
    assert get(acme, "/a.bin") == second
    (old,) = [v for v in acme.versions("/a.bin") if not v.current]
    acme.restore("/a.bin", old.id)
    assert get(acme, "/a.bin") == first
    acme.copy("/a.bin", "/b.bin")
    assert get(acme, "/b.bin") == first


def test_random_access_resume_and_holes(acme):
    data = content(2 * CHUNK)
    upload = acme.open_write("/r.bin")
    upload.write(0, data)
    upload.write(10, b"rewritten")            # before the end: random access from here
    upload.write(5 * CHUNK, b"tail")          # past the end: a hole in between
    upload.commit()
    expected = data[:10] + b"rewritten" + data[19:] + bytes(3 * CHUNK) + b"tail"
    assert get(acme, "/r.bin") == expected
    resumed = acme.open_write("/r.bin", truncate=False)
    resumed.write(len(expected), b"more")     # resume: the rest comes from the last version
    resumed.commit()
    assert get(acme, "/r.bin") == expected + b"more"


def test_delete_restore_and_doctor(app, acme):
    put(acme, "/gone.txt", b"soon in the trash")
    acme.remove("/gone.txt")
    (item,) = acme.list("/@trash")
    app.admin().restore_trash(f"/acme/@trash/{item.name}")
    assert get(admin_session(app), "/acme/gone.txt") == b"soon in the trash"
    stray = app.provider.create_blob(os.urandom(32), os.urandom(32))
    stray.write(b"never published")
    stray.commit()
    stray.settle()    # as if its version's transaction had failed without deleting it
    report = app.admin().doctor()
    assert report["stray_blobs"] == [stray.blob_id] and not report["ok"]
    assert app.admin().doctor(repair=True)["stray_blobs"] == [stray.blob_id]  # too young
    report = app.admin().doctor(repair=True, min_age=0)
    assert report["removed"] == [stray.blob_id] and report["ok"]
    assert app.admin().doctor()["ok"]
    assert consistency.check(app)["ok"]
    events = app.admin().audit_events(action="doctor-repair")
    assert [(e["actor"], e["detail"]) for e in events] == [
        ("admin", f"removed stray blob {stray.blob_id}")]


# -- what the service does with a provider's capabilities --------------------------

class InOrderOnly(LocalProvider):
    """A provider that can neither rewrite nor leave holes (as an object store might)."""
    capabilities = Capabilities(random_write=False, holes=False)


@pytest.fixture
def plain(app):
    app.provider = InOrderOnly(app.provider.root, app.provider.chunk_size)
    return client_session(app, "plain")


def test_without_random_writes_a_write_before_the_end_is_refused(plain):
    upload = plain.open_write("/r.bin")
    upload.write(0, content(CHUNK + 10))
    with pytest.raises(Unsupported):
        upload.write(5, b"again")
    with pytest.raises(Conflict):          # the upload was discarded: nothing half-done
        upload.commit()
    with pytest.raises(NotFound):
        plain.stat("/r.bin")


def test_without_holes_a_gap_is_stored_as_zeros(app, plain):
    upload = plain.open_write("/sparse.bin")
    upload.write(4 * CHUNK, b"end")
    upload.commit()
    assert get(plain, "/sparse.bin") == bytes(4 * CHUNK) + b"end"
    with app.db.read() as s:
        holes = s.execute(text("SELECT holes FROM versions")).scalars().all()
    assert holes == [None]
    handle = plain.open_read("/sparse.bin")
    try:
        assert handle.data_ranges() == [(0, 4 * CHUNK + 3)]
    finally:
        handle.close()
