"""scripts/install.sh and scripts/uninstall.sh, run as root the way an admin runs them.

Each test installs into a temporary prefix and data directory with a throwaway service user,
with root's PATH pointing first at a python3 that the service user cannot reach (as pyenv's is,
from /root): the installer must build the venv with Debian's /usr/bin/python3 all the same.
systemd is not PID 1 here, so the daemon is started the way install.sh then says, as the
service user.
"""
import json
import os
import secrets
import shutil
import socket
import subprocess
import time
from pathlib import Path

import paramiko
import pytest

from tests.support.daemon import HOST, free_ports

ROOT = Path(__file__).resolve().parents[2]
INSTALL, UNINSTALL = ROOT / "scripts" / "install.sh", ROOT / "scripts" / "uninstall.sh"
PASSWORD = "Install-test-passphrase-4711"

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="the installer runs as root (CI does)"),
    pytest.mark.skipif(not Path("/usr/bin/python3").exists(), reason="no Debian python3"),
]


class Layout:
    """A throwaway installation: directories, a service user, ports, a root-only python."""

    def __init__(self, base: Path):
        self.base = base
        self.user = f"srt{secrets.token_hex(3)}"
        self.prefix, self.data = base / "opt", base / "var" / "data"
        self.bin, self.units = base / "bin", base / "units"
        self.webdav_port, self.sftp_port = free_ports(2)
        self.rootonly = base / "rootonly"       # like /root/.pyenv: closed to the service user
        self.rootonly.mkdir(mode=0o700)
        for name in ("python3", "python"):
            (self.rootonly / name).symlink_to("/usr/bin/python3")
        self.env = {**os.environ, "PATH": f"{self.rootonly}:{os.environ['PATH']}"}
        self.env.pop("STRONGROOM_DATA_DIR", None)
        self.daemon: subprocess.Popen | None = None

    @property
    def venv(self) -> Path:
        return self.prefix / "venv"

    def layout_args(self) -> list[str]:
        return ["--prefix", str(self.prefix), "--data-dir", str(self.data), "--user", self.user,
                "--bin-dir", str(self.bin), "--unit-dir", str(self.units)]

    def install(self, *args: str) -> subprocess.CompletedProcess:
        return self.run([str(INSTALL), *args])

    def uninstall(self, *args: str) -> subprocess.CompletedProcess:
        return self.run([str(UNINSTALL), "--prefix", str(self.prefix), *args])

    def cli(self, *args: str, user: str | None = None, stdin: str = "") -> subprocess.CompletedProcess:
        """The `strongroom` command link, as root (or as `user`), on this data directory."""
        argv = [str(self.bin / "strongroom"), *args]
        if user:
            argv = ["runuser", "-u", user, "--", *argv]
        return self.run(argv, stdin, STRONGROOM_DATA_DIR=str(self.data))

    def run(self, argv, stdin: str = "", **env) -> subprocess.CompletedProcess:
        return subprocess.run(argv, env={**self.env, **env}, input=stdin, capture_output=True,
                              text=True, timeout=600, cwd="/")

    def daemon_pid(self) -> int:
        return json.loads((self.data / "strongroom.pid").read_text())["pid"]

    def serve(self) -> None:
        """`strongroom serve` as the service user, as install.sh says when systemd is absent."""
        self.daemon = subprocess.Popen(
            ["runuser", "-u", self.user, "--", str(self.venv / "bin" / "strongroom"), "serve",
             "--data-dir", str(self.data)], cwd="/", env=self.env,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30
        while not all(_accepts(p) for p in (self.webdav_port, self.sftp_port)):
            if self.daemon.poll() is not None:
                pytest.fail(f"serve exited: {self.daemon.stderr.read()[-2000:]}")
            assert time.monotonic() < deadline, "the daemon did not listen within 30 s"
            time.sleep(0.2)

    def stop(self) -> None:
        if self.daemon and self.daemon.poll() is None:
            subprocess.run(["pkill", "-TERM", "-u", self.user], check=False)
            self.daemon.wait(timeout=30)
        self.daemon = None

    def cleanup(self) -> None:
        self.stop()
        subprocess.run(["pkill", "-KILL", "-u", self.user], check=False,
                       stderr=subprocess.DEVNULL)
        subprocess.run(["userdel", self.user], check=False, stderr=subprocess.DEVNULL)
        subprocess.run(["groupdel", self.user], check=False, stderr=subprocess.DEVNULL)
        shutil.rmtree(self.base, ignore_errors=True)


def _accepts(port: int) -> bool:
    try:
        socket.create_connection((HOST, port), timeout=1).close()
        return True
    except OSError:
        return False


@pytest.fixture
def layout():
    base = Path(os.path.realpath("/tmp")) / f"strongroom-install-{secrets.token_hex(4)}"
    base.mkdir()
    base.chmod(0o755)       # not left to the umask: in-process CLI tests set 077 in this worker
    lay = Layout(base)
    yield lay
    lay.cleanup()


def one_line_error(result: subprocess.CompletedProcess, script: str) -> str:
    assert result.returncode != 0, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{script}: "), result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def put_webdav(lay: Layout, name: str, body: bytes) -> int:
    r = subprocess.run(["curl", "-sk", "-o", "/dev/null", "-w", "%{http_code}", "-u",
                        f"alice:{PASSWORD}", "-T", "-", f"https://{HOST}:{lay.webdav_port}/{name}"],
                       input=body, capture_output=True, timeout=60)
    return int(r.stdout or 0)


def get_sftp(lay: Layout, name: str) -> bytes:
    t = paramiko.Transport((HOST, lay.sftp_port))
    try:
        t.connect(username="alice", password=PASSWORD)
        with paramiko.SFTPClient.from_transport(t).open(f"/{name}") as f:
            return f.read()
    finally:
        t.close()


def test_install_serve_upgrade_and_uninstall_keep_the_data(layout):
    lay = layout
    # an earlier install.sh made the venv with root's python: the service user could not run it
    subprocess.run(["python3", "-m", "venv", str(lay.venv)], env=lay.env, check=True,
                   cwd="/")
    assert str(lay.rootonly) in (lay.venv / "pyvenv.cfg").read_text()

    first = lay.install(*lay.layout_args(), "--host", HOST, "--webdav-port",
                        str(lay.webdav_port), "--sftp-port", str(lay.sftp_port))
    assert first.returncode == 0, first.stderr
    assert "rebuilding" in first.stdout and "installed strongroom" in first.stdout
    assert "home = /usr/bin" in (lay.venv / "pyvenv.cfg").read_text()
    assert os.path.realpath(lay.venv / "bin" / "python3").startswith("/usr/bin/python3")
    version = lay.cli("--version", user=lay.user)
    assert version.returncode == 0 and version.stdout.startswith("strongroom, version "), \
        version.stderr
    unit = (lay.units / "strongroom.service").read_text()
    assert f"User={lay.user}\n" in unit and f"ReadWritePaths={lay.data}\n" in unit
    assert f"ExecStart={lay.venv}/bin/strongroom serve\n" in unit
    assert "/opt/strongroom" not in unit and "/var/lib/strongroom" not in unit
    if shutil.which("systemd-analyze"):
        assert subprocess.run(["systemd-analyze", "verify", lay.units / "strongroom.service"],
                              capture_output=True).returncode == 0

    lay.serve()
    assert lay.cli("client", "add", "acme").returncode == 0
    added = lay.cli("user", "add", "alice", "--client", "acme", "--no-totp",
                    "--password-stdin", "--json", stdin=f"{PASSWORD}\n")
    assert added.returncode == 0, added.stderr
    assert put_webdav(lay, "report.txt", b"annual report\n") == 201
    assert get_sftp(lay, "report.txt") == b"annual report\n"
    owners = {p.owner() for p in lay.data.rglob("*")}
    assert owners == {lay.user}, "commands run as root wrote files the daemon cannot own"
    waited = subprocess.run(
        ["bash", "-c", f'ME=test; . {ROOT}/scripts/installer-lib.sh; SVC={lay.user}; '
                       f'wait_serving {lay.user} {lay.data} {lay.venv}'],
        capture_output=True, text=True, timeout=60)
    assert waited.returncode == 0 and "answers on both ports" in waited.stdout, waited.stderr

    # again: an upgrade in place, which keeps the configuration and the files
    config = (lay.data / "strongroom.toml").read_bytes()
    moved = lay.install("--prefix", str(lay.prefix), "--data-dir", str(lay.base / "elsewhere"))
    assert "installed with --data-dir" in one_line_error(moved, "install.sh")
    second = lay.install("--prefix", str(lay.prefix))
    assert second.returncode == 0, second.stderr
    assert "upgraded strongroom" in second.stdout
    assert f"PID {lay.daemon_pid()} still serves" in second.stdout
    assert (lay.data / "strongroom.toml").read_bytes() == config
    lay.stop()
    lay.serve()
    assert get_sftp(lay, "report.txt") == b"annual report\n"

    # uninstall: refused while a daemon serves, then the data stays
    assert "still serves" in one_line_error(lay.uninstall(), "uninstall.sh")
    lay.stop()
    gone = lay.uninstall()
    assert gone.returncode == 0, gone.stderr
    assert not lay.venv.exists() and not (lay.bin / "strongroom").exists()
    assert not (lay.units / "strongroom.service").exists()
    assert (lay.data / "strongroom.toml").read_bytes() == config
    assert subprocess.run(["id", lay.user], capture_output=True).returncode == 0

    # a new install uses the kept data again; --purge needs --yes, then removes data and user
    third = lay.install(*lay.layout_args(), "--no-start")
    assert third.returncode == 0 and "installed strongroom" in third.stdout, third.stderr
    lay.serve()
    assert get_sftp(lay, "report.txt") == b"annual report\n"
    lay.stop()
    assert "--yes" in one_line_error(lay.uninstall("--purge"), "uninstall.sh")
    assert (lay.data / "strongroom.toml").exists() and lay.venv.exists()
    purged = lay.uninstall("--purge", "--yes")
    assert purged.returncode == 0, purged.stderr
    assert not lay.data.exists() and not lay.prefix.exists()
    assert subprocess.run(["id", lay.user], capture_output=True).returncode != 0


def test_bad_options_and_closed_directories_are_one_line(layout):
    lay = layout
    assert "unknown option" in one_line_error(lay.install("--prefx", "/x"), "install.sh")
    assert "absolute path" in one_line_error(lay.install("--prefix", "opt"), "install.sh")
    assert "needs a value" in one_line_error(lay.install("--data-dir"), "install.sh")
    assert "install.env" in one_line_error(lay.uninstall(), "uninstall.sh")
    closed = lay.base / "closed"
    closed.mkdir(mode=0o700)
    result = lay.install("--prefix", str(closed / "opt"), "--data-dir", str(lay.data),
                         "--user", lay.user, "--bin-dir", str(lay.bin),
                         "--unit-dir", str(lay.units), "--no-start")
    assert f"cannot enter {closed}" in one_line_error(result, "install.sh")
    assert not (closed / "opt" / "venv").exists()
