"""`strongroom doctor --verify` against the running daemon's store: a clean store
exits 0; a flipped byte, a truncated blob and a deleted blob are each reported with
the client and path of their version, and exit 1; --sample 50 reads half the
versions."""
import json
import os
import sqlite3

import pytest

from tests.support.daemon import running_daemon, sftp_quote as q


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    """A daemon of its own: this module damages its store."""
    yield from running_daemon(tmp_path_factory, "verify")


@pytest.fixture(scope="module")
def uploaded(daemon):
    """Twenty files of acme, half over WebDAV and half over SFTP: {path: bytes}."""
    assert daemon.run_sftp("alice", ["mkdir /scan"]).returncode == 0
    files = {f"/scan/file {i:02}.bin": os.urandom(300_000 + i) for i in range(20)}
    batch = []
    for i, (path, data) in enumerate(files.items()):
        local = daemon.path("up.bin")
        local.write_bytes(data)
        if i % 2:
            batch.append(f"put {q(local)} {q(path)}")
        else:
            assert daemon.request("alice", "PUT", path, "-T", local).status == 201
    assert daemon.run_sftp("alice", batch).returncode == 0
    return files


def verify(daemon, *args):
    proc = daemon.cli("doctor", "--verify", "--json", *args)
    return proc.returncode, json.loads(proc.stdout)


def blob_of(daemon, path: str):
    """The blob file of the current version of acme's `path` (read from the database)."""
    rows = json.loads(daemon.cli("versions", "list", f"/acme{path}", "--json",
                                 check=True).stdout)
    version = rows[-1]["id"]
    db = sqlite3.connect(f"file:{daemon.data_dir / 'strongroom.db'}?mode=ro", uri=True)
    try:
        (blob_id,) = db.execute("SELECT blob_id FROM versions WHERE id = ?", (version,)).fetchone()
    finally:
        db.close()
    return version, daemon.blob_dir / blob_id[:2] / blob_id


def test_a_clean_store_exits_0(daemon, uploaded):
    code, report = verify(daemon)
    assert code == 0 and report["ok"]
    assert report["verify"]["checked"] == report["verify"]["versions"] == len(uploaded)
    assert report["verify"]["bytes"] == sum(map(len, uploaded.values()))
    human = daemon.cli("doctor", "--verify")
    assert human.returncode == 0 and f"verified {len(uploaded)} of {len(uploaded)} versions" \
        in human.stdout and human.stderr == ""


def test_a_sample_reads_half(daemon, uploaded):
    code, report = verify(daemon, "--sample", "50")
    assert code == 0 and report["verify"]["checked"] == len(uploaded) // 2
    assert report["verify"]["sample_percent"] == 50


def test_damage_is_reported_with_client_and_path(daemon, uploaded):
    flipped, blob = blob_of(daemon, "/scan/file 03.bin")
    with open(blob, "r+b") as f:
        f.seek(32 + 1000)                        # inside the first chunk's ciphertext
        byte = f.read(1)
        f.seek(32 + 1000)
        f.write(bytes([byte[0] ^ 1]))
    truncated, blob = blob_of(daemon, "/scan/file 08.bin")
    os.truncate(blob, blob.stat().st_size - 100)
    deleted, blob = blob_of(daemon, "/scan/file 11.bin")
    blob.unlink()
    code, report = verify(daemon)
    assert code == 1 and not report["ok"]
    got = {(d["client"], d["path"], d["version"], d["problem"])
           for d in report["verify"]["damaged"]}
    assert got == {("acme", "/acme/scan/file 03.bin", flipped, "chunk 0 fails authentication"),
                   ("acme", "/acme/scan/file 08.bin", truncated,
                    "blob is truncated or has the wrong length"),
                   ("acme", "/acme/scan/file 11.bin", deleted, "blob is missing")}
    human = daemon.cli("doctor", "--verify")
    assert human.returncode == 1
    assert (f"damaged: /acme/scan/file 03.bin version {flipped}: chunk 0 fails "
            "authentication") in human.stdout
    assert "damaged: /acme/scan/file 11.bin" in human.stdout and human.stderr == ""
