"""Admin commands run as root on a data directory that belongs to the service
user: they run as that user, so that nothing they write (blobs, their folders,
the database's journal, the audit anchor) is unreadable for the daemon. A user
who is neither root nor the owner is told how to run the command instead."""
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.support.daemon import Daemon, need

NOBODY = 65534
AS_NOBODY = ("setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups")


@pytest.fixture(scope="module")
def owned():
    """A daemon running as `nobody` on a data directory nobody owns."""
    if os.geteuid() != 0:
        pytest.skip("needs root to run commands as root and the daemon as nobody")
    need("setpriv")
    root = Path(tempfile.mkdtemp(prefix="strongroom-owner-"))
    root.chmod(0o755)           # pytest's own tmp folders are root's only
    d = Daemon(root)
    d.provision()
    subprocess.run(["chown", "-R", f"{NOBODY}:{NOBODY}", str(d.data_dir)], check=True)
    d.run_as = AS_NOBODY
    d.start()
    yield d
    if d.running:
        d.stop()
    shutil.rmtree(root, ignore_errors=True)


def test_root_restoring_a_version_leaves_it_readable(owned):
    for text in ("first", "second"):
        assert owned.request("alice", "PUT", "/report.txt", "--data-binary", text).status in (201, 204)
    rows = json.loads(owned.cli("versions", "list", "/acme/report.txt", "--json",
                                check=True).stdout)
    owned.cli("versions", "restore", "/acme/report.txt", rows[0]["id"], check=True)
    owned.cli("client", "add", "gamma", "--quota", "1GiB", check=True)
    got = owned.request("alice", "GET", "/report.txt")
    assert (got.status, got.body) == (200, b"first")
    assert owned.request("alice", "PUT", "/more.txt", "--data-binary", "x").status == 201
    strangers = [str(p) for p in owned.data_dir.rglob("*") if p.stat().st_uid != NOBODY]
    assert strangers == [], "files the daemon's user does not own"


def test_another_user_is_told_how(owned):
    proc = subprocess.run(["setpriv", "--reuid=1", "--regid=1", "--clear-groups", "strongroom",
                           "client", "list", "--data-dir", str(owned.data_dir)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "sudo -u nobody strongroom" in lines[0], proc.stderr
