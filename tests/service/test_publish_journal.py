"""A blob published before its version commits cannot outlive a crash (issue 18).

An upload publishes its blob, then records the version in a transaction (which may
queue behind the writer lock); a process killed in between left a blob no version
names, which nothing removed at the next start. Now the blob stays marked (its
staging name, held by the process) until the transaction has ended, and the
start-up cleaning (admin_doctor.clean_staging, what the daemon runs) deletes the
marked blobs of dead processes that no version names, and only those: a committed
version's blob stays, and so does the blob of a process still publishing.
"""
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from strongroom.appliance.service import admin_doctor, consistency
from tests.support.sessions import admin_session, get

DATA = b"journal " * 40_000

UPLOADER = textwrap.dedent("""
    import os, signal, sys
    from strongroom.appliance.app import App
    from strongroom.appliance.service.writing import Writes
    from strongroom.providers.streams import ChunkedWriter
    from tests.support.sessions import client_session, put
    app = App(sys.argv[1])
    session = client_session(app, "acme")
    when = sys.argv[2]
    publish = Writes._published
    def die(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)
    def wait_then_publish(*args, **kwargs):
        print("published", flush=True)
        sys.stdin.readline()
        return publish(*args, **kwargs)
    if when == "before-version":     # the blob is in place, its version not recorded
        Writes._published = die
    elif when == "before-settle":    # the version committed, the mark not yet dropped
        ChunkedWriter.settle = die
    else:                            # "paused": alive, between publishing and its version
        Writes._published = wait_then_publish
    put(session, "/f.bin", b"journal " * 40_000)
    print("done", flush=True)
""")


def upload(app, when: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", UPLOADER, str(app.data_dir), when],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parents[2])


def killed(app, when: str) -> None:
    proc = upload(app, when)
    proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL


def blobs(app) -> set[str]:
    return set(app.provider.blob_ids())


def test_a_blob_whose_version_never_committed_is_removed_at_start(app):
    killed(app, "before-version")
    report = consistency.check(app)
    (stray,) = report["stray_blobs"]            # what doctor stayed red about
    removed = admin_doctor.clean_staging(app)
    assert sorted(removed) == sorted([stray, f"{stray}.part"])
    report = consistency.check(app)
    assert report["ok"] and report["blobs"] == 0, report


def test_a_committed_versions_blob_stays(app):
    killed(app, "before-settle")
    (blob,) = blobs(app)
    assert admin_doctor.clean_staging(app) == [f"{blob}.part"]
    assert blobs(app) == {blob}
    assert get(admin_session(app), "/acme/f.bin") == DATA
    assert consistency.check(app)["ok"]


def test_a_live_publishers_blob_stays(app):
    """A daemon starting (or doctor --repair) while a CLI command publishes."""
    proc = upload(app, "paused")
    try:
        assert proc.stdout.readline().strip() == "published"
        (blob,) = blobs(app)
        assert admin_doctor.clean_staging(app) == []
        assert app.admin().doctor(repair=True)["removed"] == []
        assert blobs(app) == {blob}
        out, _ = proc.communicate("go\n", timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 0 and out.strip() == "done"
    assert get(admin_session(app), "/acme/f.bin") == DATA
    assert consistency.check(app)["ok"]
