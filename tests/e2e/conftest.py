"""The end-to-end level: the real `strongroom serve` daemon and the real CLI as
subprocesses, driven by real clients (OpenSSH, rclone, curl, davfs2, ...) over
loopback. Every test here carries the `e2e` marker.

`daemon` (module-scoped) is a provisioned data directory and a running daemon
(tests/support/daemon.py), shared by the tests of one module; a module needing other
options makes its own fixture with `running_daemon`.
"""
import grp
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.support.daemon import need, running_daemon
from tests.support.mounts import need_fuse


def pytest_itemcollected(item):
    item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    """A provisioned data dir and a running daemon, shared by the tests of one module."""
    yield from running_daemon(tmp_path_factory)


@pytest.fixture
def davfs2_shared():
    """(folder, gid): a folder the davfs2 user can read (the certificate) and write
    (the caches) in. mount.davfs drops to that user before it reads
    trust_server_cert and opens cache_dir, and pytest's temporary directories are
    private to root."""
    need("mount.davfs", "umount")
    need_fuse()
    try:
        gid = grp.getgrnam("davfs2").gr_gid
    except KeyError:
        pytest.fail("group davfs2 missing: is the davfs2 package installed?")
    shared = Path(tempfile.mkdtemp(prefix="strongroom-davfs2-"))
    try:
        shared.chmod(0o755)
        yield shared, gid
    finally:
        shutil.rmtree(shared, ignore_errors=True)
