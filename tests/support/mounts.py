"""Network drives mounted on this machine (davfs2 through /dev/fuse, rclone mount):
waiting for a mount, unmounting whatever happens, and davfs2's own setup.

Every subprocess has a timeout; a mount is unmounted in a `finally`, lazily if a
clean unmount fails.
"""
import os
import shutil
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

MOUNT_TIMEOUT = 30      # seconds for a mount to appear, an unmount, or uploads to land


def mounted(mountpoint: Path) -> bool:
    """From /proc/self/mounts: no file-system call that a hung mount could block."""
    target = str(mountpoint)
    with open("/proc/self/mounts", encoding="utf-8", errors="replace") as f:
        return any(line.split()[1].replace("\\040", " ") == target for line in f)


def wait_until(predicate, what, timeout: float = MOUNT_TIMEOUT) -> None:
    """Poll `predicate`; fail naming `what` (a string, or a callable giving one)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for "
                        f"{what() if callable(what) else what}")
        time.sleep(0.2)


def run_briefly(argv, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, stdin=subprocess.DEVNULL,
                          timeout=MOUNT_TIMEOUT, **kw)


def unmount_anyway(mountpoint: Path, clean: list, lazy: list) -> None:
    """Teardown after a failure: a clean unmount if it works, else a lazy one."""
    for argv in (clean, lazy):
        if not mounted(mountpoint):
            return
        try:
            run_briefly([*argv, str(mountpoint)])
        except subprocess.TimeoutExpired:
            pass


def need_fuse() -> None:
    if not Path("/dev/fuse").exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("/dev/fuse missing; CI=true, so the mount tests may not be skipped")
        pytest.skip("mount tests need /dev/fuse")


@contextmanager
def davfs2_mount(daemon, user: str, mountpoint: Path, shared: Path, gid: int, cache: str):
    """Mount the user's root with mount.davfs, with the cache folder `shared/cache`
    (made empty if new). Unmounting makes davfs2 upload whatever is still pending."""
    u = daemon.users[user]
    cert = shared / "cert.pem"
    shutil.copy(daemon.data_dir / "tls" / "cert.pem", cert)
    cert.chmod(0o644)
    cache_dir = shared / cache
    cache_dir.mkdir(exist_ok=True)
    os.chown(cache_dir, 0, gid)
    cache_dir.chmod(0o775)
    secrets = daemon.path("davfs2-secrets")
    secrets.write_text(f'"{mountpoint}" {u.login} "{u.password}"\n')
    secrets.chmod(0o600)
    conf = daemon.path("davfs2.conf")
    conf.write_text("\n".join([
        f"secrets {secrets}", f"trust_server_cert {cert}", f"cache_dir {cache_dir}",
        "ask_auth 0",           # never prompt: a missing credential fails the mount
        "use_locks 1",          # davfs2's default: LOCK (unmapped URLs too) while open
        "delay_upload 0",       # upload on close, as a user's save expects
        # Linux 6.16+ refuses davfs2's directory replies with the default 16 KiB
        # buffer (EINVAL on readdir); 64 is the workaround davfs2's users found
        "buf_size 64", ""]))
    mountpoint.mkdir(exist_ok=True)
    log = daemon.path("mount.davfs.log")
    try:
        with open(log, "wb") as out:    # not a pipe: the forked daemon would hold it open
            proc = subprocess.run(["mount.davfs", daemon.url("/"), str(mountpoint),
                                   "-o", f"conf={conf}"], stdin=subprocess.DEVNULL,
                                  stdout=out, stderr=out, timeout=MOUNT_TIMEOUT)
        assert proc.returncode == 0 and mounted(mountpoint), \
            f"mount.davfs exited {proc.returncode}: {log.read_text('utf-8', 'replace')}"
        yield mountpoint
        umount = run_briefly(["umount", str(mountpoint)])
        assert umount.returncode == 0 and not mounted(mountpoint), umount.stderr
    finally:
        unmount_anyway(mountpoint, ["umount"], ["umount", "-l"])


