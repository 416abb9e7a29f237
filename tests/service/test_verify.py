"""The scrub at the service level (Admin.verify_blobs), on SQLite and PostgreSQL:
every chunk of every version is authenticated, each damaged version is named with
its client and path, and a sample reads exactly its share."""
import os
import random
import threading

import pytest

from strongroom.appliance.db.models import Version
from strongroom.appliance.errors import BadRequest
from tests.support.sessions import client_session, put


@pytest.fixture
def acme(app):
    session = client_session(app, "acme")
    session.mkdir("/docs")
    put(session, "/docs/big.bin", os.urandom(600_000))     # three chunks of 256 KiB
    put(session, "/docs/cut.txt", b"truncated soon" * 100)
    put(session, "/docs/gone.txt", b"blob deleted soon")
    put(session, "/old.txt", b"v1")
    put(session, "/old.txt", b"v2")
    put(session, "/empty.txt", b"")
    session.remove("/old.txt")
    return session


def blob_path(app, session, path):
    with app.db.read() as s:
        return app.provider.blob_path(s.get(Version, session.stat(path).version_id).blob_id)


def test_a_clean_store_is_all_verified(app, acme):
    report = app.admin().verify_blobs()
    assert report["ok"] and report["damaged"] == []
    assert report["versions"] == report["checked"] == 6
    assert report["bytes"] == 600_000 + 1400 + 17 + 2 + 2


def test_each_damaged_version_is_named(app, acme):
    big = blob_path(app, acme, "/docs/big.bin")
    data = bytearray(big.read_bytes())
    data[32 + 262_144 + 16 + 5] ^= 0x40              # the second chunk's ciphertext
    big.write_bytes(bytes(data))
    cut = blob_path(app, acme, "/docs/cut.txt")
    cut.write_bytes(cut.read_bytes()[:-10])
    blob_path(app, acme, "/docs/gone.txt").unlink()
    report = app.admin().verify_blobs()
    problems = {d["path"]: d["problem"] for d in report["damaged"]}
    assert problems == {"/acme/docs/big.bin": "chunk 1 fails authentication",
                        "/acme/docs/cut.txt": "blob is truncated or has the wrong length",
                        "/acme/docs/gone.txt": "blob is missing"}
    assert not report["ok"] and report["checked"] == 6
    (damage,) = [d for d in report["damaged"] if d["path"] == "/acme/docs/big.bin"]
    assert damage["client"] == "acme" and damage["version"] == acme.stat(
        "/docs/big.bin").version_id and not damage["deleted"]


def test_a_damaged_version_in_the_trash_says_so(app, acme):
    with app.db.read() as s:
        rows = s.query(Version).order_by(Version.id).all()
        trashed = [v.blob_id for v in rows if v.size == 2]
    for blob_id in trashed:
        app.provider.blob_path(blob_id).unlink()
    report = app.admin().verify_blobs()
    assert [(d["path"], d["deleted"], d["problem"]) for d in report["damaged"]] == [
        ("/acme/old.txt", True, "blob is missing")] * 2


def test_an_unreadable_blob_is_reported_and_the_scrub_goes_on(app, acme):
    path = blob_path(app, acme, "/docs/cut.txt")
    path.unlink()
    path.mkdir()           # reading it fails with EISDIR, as a failing disk fails with EIO
    report = app.admin().verify_blobs()
    assert [(d["path"], d["problem"]) for d in report["damaged"]] == [
        ("/acme/docs/cut.txt", "cannot read the blob: Is a directory")]
    assert report["checked"] == 6


@pytest.mark.parametrize("percent, expected", [(50, 3), (10, 1), (100, 6), (34, 2)])
def test_a_sample_reads_its_share(app, acme, percent, expected):
    report = app.admin().verify_blobs(percent, rng=random.Random(7))
    assert report["checked"] == expected and report["sample_percent"] == percent


def test_a_sample_is_a_random_choice(app, acme):
    seen = set()
    for seed in range(30):
        report = app.admin().verify_blobs(50, rng=random.Random(seed))
        seen.add(report["bytes"])
    assert len(seen) > 3        # different versions each time, not the first half


@pytest.mark.parametrize("percent", [0, -5, 100.5])
def test_a_sample_out_of_range_is_refused(app, percent):
    with pytest.raises(BadRequest, match="--sample: a percentage above 0"):
        app.admin().verify_blobs(percent)


def test_a_blob_that_is_a_fifo_or_a_symlink_is_reported_not_opened(app, acme, tmp_path):
    """Something put in a blob's place: a FIFO (opening it for reading waited for a
    writer: the scrub hung) or a symbolic link to a file elsewhere (followed and read).
    Each is reported as damage and the scrub goes on."""
    fifo, link = blob_path(app, acme, "/docs/cut.txt"), blob_path(app, acme, "/docs/gone.txt")
    fifo.unlink()
    os.mkfifo(fifo)
    outside = tmp_path / "outside"
    os.mkfifo(outside)                      # a link target that would hang too if opened
    link.unlink()
    link.symlink_to(outside)
    done: list = []
    scrub = threading.Thread(target=lambda: done.append(app.admin().verify_blobs()), daemon=True)
    scrub.start()
    scrub.join(30)
    for stuck in (fifo, outside):           # free a reader the scrub left waiting
        try:
            os.close(os.open(stuck, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            pass
    scrub.join(10)
    assert done, "the scrub hung on a FIFO"
    assert sorted((d["path"], d["problem"]) for d in done[0]["damaged"]) == [
        ("/acme/docs/cut.txt", "blob is not a regular file"),
        ("/acme/docs/gone.txt", "blob is not a regular file")]
    assert done[0]["checked"] == 6
