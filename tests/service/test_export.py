"""Client export at the service level (appliance.service.export), on SQLite and
PostgreSQL: the tar holds the current tree decrypted, folders and times kept, every
version under @versions with --versions, and manifest.json whose sha256 match; a
failure leaves no partial file; the export is audited."""
import io
import json
import os
import tarfile

import pytest

from strongroom.appliance.errors import BadRequest, Conflict, CorruptData, NotFound
from tests.support.sessions import client_session, put, sha


@pytest.fixture
def acme(app):
    session = client_session(app, "acme")
    session.mkdir("/docs")
    session.mkdir("/empty")
    put(session, "/docs/report.pdf", b"first")
    put(session, "/docs/report.pdf", b"second version")
    put(session, "/top.txt", os.urandom(700_000))      # a few chunks
    put(session, "/manifest.json", b"the client's own")
    put(session, "/gone.txt", b"deleted")
    session.remove("/gone.txt")
    return session


@pytest.fixture
def out(tmp_path):
    """A folder for exports (tmp_path holds the data dir too)."""
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


def members(path):
    with tarfile.open(path) as tar:
        return {m.name: (m, tar.extractfile(m).read() if m.isfile() else None)
                for m in tar.getmembers()}


def test_the_current_tree_decrypted_with_a_manifest(app, acme, out):
    summary = app.admin().export_client("acme", out / "acme.tar")
    got = members(out / "acme.tar")
    assert set(got) == {"acme", "acme/docs", "acme/empty", "acme/docs/report.pdf", "acme/top.txt",
                        "acme/manifest.json", "manifest.json"}       # no trash, no versions
    assert got["acme/docs/report.pdf"][1] == b"second version"
    assert got["acme/empty"][0].isdir()
    manifest = json.loads(got["manifest.json"][1])
    by_path = {f["path"]: f for f in manifest["files"]}
    assert sorted(by_path) == ["/acme/docs/report.pdf", "/acme/manifest.json", "/acme/top.txt"]
    for f in manifest["files"]:
        data = got[f["member"]][1]
        assert f["sha256"] == sha(data) and f["size"] == len(data)
    report = acme.stat("/docs/report.pdf")
    assert by_path["/acme/docs/report.pdf"]["version"] == report.version_id
    assert got["acme/docs/report.pdf"][0].mtime == pytest.approx(report.mtime, abs=1e-3)
    assert summary["files"] == 3 and summary["folders"] == 2 and summary["versions"] == 0
    assert summary["bytes"] == 14 + 700_000 + 16
    assert summary["tar_bytes"] == (out / "acme.tar").stat().st_size
    assert not (out / "acme.tar.partial").exists()
    (event,) = app.admin().audit_events(action="client-export")
    assert event["path"] == "/acme" and event["detail"] == f"files=3 bytes={summary['bytes']} versions=no"


def test_versions_as_the_view_names_them(app, acme, out):
    summary = app.admin().export_client("acme", out / "acme.tar", versions=True)
    got = members(out / "acme.tar")
    names = {e.name: e for e in acme.list("/@versions/docs/report.pdf")}
    assert len(names) == 2
    for name in names:
        assert f"acme/@versions/docs/report.pdf/{name}" in got
    datas = sorted(got[f"acme/@versions/docs/report.pdf/{n}"][1] for n in names)
    assert datas == [b"first", b"second version"]
    manifest = json.loads(got["manifest.json"][1])
    report = next(f for f in manifest["files"] if f["path"] == "/acme/docs/report.pdf")
    assert len(report["versions"]) == 2 and report["version"] == report["versions"][-1]
    assert {v["sha256"] for v in manifest["versions"]} >= {sha(b"first"), sha(b"second version")}
    assert summary["versions"] == 4 and summary["with_versions"] is True


def test_to_a_stream(app, acme):
    buffer = io.BytesIO()
    app.admin().export_client("acme", buffer)
    with tarfile.open(fileobj=io.BytesIO(buffer.getvalue())) as tar:
        assert tar.extractfile("acme/docs/report.pdf").read() == b"second version"


def test_bad_input_changes_nothing(app, acme, out):
    with pytest.raises(NotFound, match="no client named 'acmee'"):
        app.admin().export_client("acmee", out / "x.tar")
    with pytest.raises(BadRequest, match="cannot write .*No such file or directory"):
        app.admin().export_client("acme", out / "nowhere" / "x.tar")
    (out / "there.tar").write_bytes(b"keep")
    with pytest.raises(Conflict, match="exists already"):
        app.admin().export_client("acme", out / "there.tar")
    assert (out / "there.tar").read_bytes() == b"keep"
    assert sorted(p.name for p in out.iterdir()) == ["there.tar"]
    assert app.admin().audit_events(action="client-export") == []


def test_a_damaged_blob_fails_the_export_and_removes_the_partial(app, acme, out):
    version = acme.stat("/top.txt").version_id
    flip_byte(app, version, 300_000)
    with pytest.raises(CorruptData, match=r"/acme/top.txt \(version \d+\): chunk 1 failed"):
        app.admin().export_client("acme", out / "acme.tar")
    assert list(out.iterdir()) == []


def flip_byte(app, version_id, offset):
    from strongroom.appliance.db.models import Version
    with app.db.read() as s:
        blob_id = s.get(Version, version_id).blob_id
    path = app.provider.blob_path(blob_id)
    data = bytearray(path.read_bytes())
    data[offset] ^= 1
    path.write_bytes(bytes(data))


def test_a_version_of_a_long_name_extracts(app, out):
    """A name near the 255-byte limit: its @versions member (date and id before the
    name) still fits a file system's name limit, so the tar extracts; the manifest names
    the member it used."""
    session = client_session(app, "acme")
    name = "é" * 120 + ".txt"                       # 244 bytes
    put(session, f"/{name}", b"one")
    put(session, f"/{name}", b"two")
    app.admin().export_client("acme", out / "a.tar", versions=True)
    with tarfile.open(out / "a.tar") as tar:
        tar.extractall(out / "x", filter="data")
        manifest = json.load(tar.extractfile("manifest.json"))
    kept = sorted(p.read_bytes() for p in (out / "x/acme/@versions" / name).iterdir())
    assert kept == [b"one", b"two"]
    assert all(len(v["member"].rsplit("/", 1)[1].encode()) <= 255
               and (out / "x" / v["member"]).is_file() for v in manifest["versions"])
