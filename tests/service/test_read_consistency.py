"""A read serves exactly the version it stat'ed (issue 18): a file overwritten between
the stat at the start of a request and the opening of its content still gives the
stat'ed version's bytes, so the size and ETag already announced are the bytes' own."""
import pytest

from wsgidav.dav_error import DAVError

from strongroom.appliance.errors import NotFound
from strongroom.appliance.webdav.davtree import DavTree
from tests.support.sessions import client_session, get, put

OLD = bytes(range(256)) * 800          # 204,800 bytes
NEW = b"n" * 100_000


@pytest.fixture
def acme(app):
    return client_session(app, "acme")


def test_open_read_by_version_after_an_overwrite(acme):
    put(acme, "/f.bin", OLD)
    stated = acme.stat("/f.bin")
    put(acme, "/f.bin", NEW)
    handle = acme.open_read("/f.bin", stated.version_id)
    try:
        assert handle.entry == stated
        assert handle.read(0, stated.size) == OLD
        assert handle.read(stated.size - 10, 100) == OLD[-10:]
    finally:
        handle.close()
    assert get(acme, "/f.bin") == NEW


def test_a_view_read_by_another_version_is_refused(acme):
    """A path in a read-only view names its version itself: asked for a different
    one (the view's path now names something else), the read is refused, not served
    from what the path names now."""
    put(acme, "/f.bin", OLD)
    put(acme, "/f.bin", NEW)
    [old, new] = sorted(acme.versions("/f.bin"), key=lambda v: v.created_at)
    listed = {e.version_id: e for e in acme.list("/@versions/f.bin")}
    path = listed[old.id].path
    assert get(acme, path, old.id) == OLD
    with pytest.raises(NotFound):
        acme.open_read(path, new.id)


def _resource(session, path: str, method: str = "GET"):
    environ = {"wsgidav.provider": DavTree(), "strongroom.session": session,
               "REQUEST_METHOD": method, "PATH_INFO": path}
    return DavTree().get_resource_inst(path, environ)


def test_webdav_get_serves_the_version_it_stated(acme):
    """wsgidav takes Content-Length and ETag from the resource, then reads
    get_content() after a while (the If-headers, the Range): the bytes are the same
    version's even if the file was overwritten in between."""
    put(acme, "/f.bin", OLD)
    res = _resource(acme, "/f.bin")
    length, etag = res.get_content_length(), res.get_etag()
    put(acme, "/f.bin", NEW)
    stream = res.get_content()
    try:
        body = stream.read(length + 1)
        stream.seek(length - 5)
        tail = stream.read(5)
    finally:
        stream.close()
    assert length == len(OLD)
    assert body == OLD and tail == OLD[-5:]
    assert _resource(acme, "/f.bin").get_etag() != etag


def test_webdav_stream_cut_short_is_an_error_not_an_early_end(acme, monkeypatch):
    """Fewer bytes than the version's size where it should have them is an error
    (the connection ends), never a quiet end of body that leaves the client waiting
    for the Content-Length it was promised."""
    put(acme, "/f.bin", OLD)
    stream = _resource(acme, "/f.bin").get_content()
    try:
        monkeypatch.setattr(stream._h, "read", lambda offset, size: b"")
        with pytest.raises(DAVError):
            stream.read(1000)
    finally:
        stream.close()
