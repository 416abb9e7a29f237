"""The real `strongroom serve` daemon, driven by real clients (the e2e level).

A `Daemon` makes a data directory with the CLI exactly as an admin would
(`strongroom init`, `client add`, `user add`), starts `strongroom serve` as a
subprocess on free loopback ports, and holds paths, ports, the users' credentials
and helpers that run OpenSSH sftp, rclone, curl and the CLI against it, each with
a timeout. `running_daemon` is the generator behind module fixtures (the `daemon`
fixture of tests/e2e/conftest.py is one). Nothing ever talks to an address other
than 127.0.0.1.

A test needing a client binary that is missing is skipped, except under
CI=true, where it fails: CI must never pass by silently skipping interop.
"""
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from itertools import count
from pathlib import Path
from urllib.parse import quote

import pytest

HOST = "127.0.0.1"
TIMEOUT = 120          # seconds, for every client subprocess
START_TIMEOUT = 30     # seconds until both ports accept connections
STOP_TIMEOUT = 15      # seconds a stopping daemon gets before SIGKILL
CLIENTS = ("acme", "beta")


@dataclass(frozen=True)
class User:
    login: str
    password: str
    client: str | None   # None: staff
    totp_secret: str | None = None


def need(*binaries: str) -> None:
    """Skip (or, under CI=true, fail) unless every binary is on PATH."""
    missing = [b for b in binaries if shutil.which(b) is None]
    if not missing:
        return
    reason = f"end-to-end test needs {', '.join(missing)} on PATH"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}; CI=true, so it may not be skipped")
    pytest.skip(reason)


# Daemons listen below Linux's ephemeral range (32768-60999), where no client's
# outgoing connection can take a port between our look and the daemon's bind; each
# pytest-xdist worker has its own block of ports.
PORTS_FROM, PORTS_PER_WORKER = 20000, 1500
_port_cursor: dict = {}


def free_ports(n: int) -> list[int]:
    """n distinct loopback ports that were free a moment ago, from this worker's block."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    first = PORTS_FROM + (int(worker) if worker.isdigit() else 0) % 8 * PORTS_PER_WORKER
    ports = []
    for _ in range(PORTS_PER_WORKER):
        port = first + _port_cursor.get(first, 0) % PORTS_PER_WORKER
        _port_cursor[first] = _port_cursor.get(first, 0) + 1
        with socket.socket() as s:
            try:
                s.bind((HOST, port))
            except OSError:
                continue     # in use, or still in TIME_WAIT from an earlier daemon
        ports.append(port)
        if len(ports) == n:
            return ports
    raise RuntimeError(f"no {n} free ports in {first}-{first + PORTS_PER_WORKER - 1}")


def sftp_quote(path) -> str:
    """A path as one argument of an sftp batch command (quotes, spaces, non-ASCII)."""
    return '"' + str(path).replace("\\", "\\\\").replace('"', '\\"') + '"'


def sftp_lines(proc) -> list[str]:
    """The output lines of an sftp batch run, without the echoed commands."""
    return [line.rstrip() for line in proc.stdout.decode("utf-8", "replace").splitlines()
            if line.strip() and not line.startswith("sftp> ")]


def _die_with_parent() -> None:
    """Linux: a daemon whose pytest dies without teardown gets SIGTERM, not orphaned."""
    try:
        import ctypes
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)   # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _daemon_preexec(nofile: int | None):
    """What the daemon process runs before exec: _die_with_parent, and with `nofile`
    an RLIMIT_NOFILE of that many descriptors (tests of running out of them)."""
    if nofile is None:
        return _die_with_parent

    def preexec() -> None:
        import resource
        _die_with_parent()
        resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
    return preexec


@dataclass
class Response:
    returncode: int      # curl's exit status (18: body shorter than announced)
    status: int          # HTTP status, 0 if none was received
    body: bytes
    stderr: str


class Daemon:
    """One data directory and the `strongroom serve` process running on it."""

    def __init__(self, root: Path):
        self.root = root
        self.data_dir = root / "data"
        self.blob_dir = self.data_dir / "blobs"
        self.staging_dir = self.blob_dir / ".staging"
        self.work = root / "work"           # clients' local files and cwd
        self.log_path = root / "daemon.log"
        self.webdav_port, self.sftp_port = free_ports(2)
        self.base_url = f"https://{HOST}:{self.webdav_port}"
        self.users: dict[str, User] = {}
        self.proc: subprocess.Popen | None = None
        self.run_as: tuple = ()     # e.g. ("setpriv", "--reuid=...", ...) before `serve`
        self._log_offset = 0
        self._seq = count()
        self._rclone_conf: Path | None = None
        self.work.mkdir(parents=True)

    # -- provisioning and the process -------------------------------------------

    def cli(self, *args, input: bytes | None = None, check: bool = False,
            timeout: float = TIMEOUT) -> subprocess.CompletedProcess:
        """Run `strongroom ARGS --data-dir DATA`; output as text."""
        proc = subprocess.run(["strongroom", *map(str, args), "--data-dir", str(self.data_dir)],
                              input=input, capture_output=True, timeout=timeout)
        proc.stdout, proc.stderr = (proc.stdout.decode("utf-8", "replace"),
                                    proc.stderr.decode("utf-8", "replace"))
        if check and proc.returncode != 0:
            pytest.fail(f"strongroom {' '.join(map(str, args))} exited {proc.returncode}: "
                        f"{proc.stderr.strip()}")
        return proc

    def cli_in_process(self, *args, input: str | None = None) -> str:
        """Run `strongroom ARGS --data-dir DATA` in this process (click's runner: the same
        commands, without a Python start of a second each); its output; the test fails
        if it does. For provisioning: tests of the CLI itself use `cli`, a process."""
        from click.testing import CliRunner
        from strongroom.appliance.cli import main
        result = CliRunner().invoke(main, [*map(str, args), "--data-dir", str(self.data_dir)],
                                    input=input)
        if result.exit_code != 0:
            pytest.fail(f"strongroom {' '.join(map(str, args))} exited {result.exit_code}: "
                        f"{result.output.strip()} {result.exception!r}")
        return result.stdout

    def provision(self, database_url: str | None = None) -> None:
        """init, clients acme and beta, users alice, bob and staff; with `database_url`,
        on that database (PostgreSQL) instead of the data dir's SQLite file."""
        self.cli_in_process("init", "--host", HOST, "--webdav-port", self.webdav_port,
                            "--sftp-port", self.sftp_port)
        if database_url:
            self.set_options("database", url=database_url)
        for name in CLIENTS:
            self.cli_in_process("client", "add", name, "--quota", "10GiB")
        # hex passwords cannot contain these logins (l, i, o, s, t are not hex digits)
        for login, client in (("alice", "acme"), ("bob", "beta"), ("staff", None)):
            user = User(login, f"E2e-pass-{os.urandom(8).hex()}", client)
            where = ("--client", client) if client else ("--staff",)
            self.cli_in_process("user", "add", login, *where, "--password-stdin", "--no-totp",
                                "--json", input=user.password + "\n")
            self.users[login] = user
        for name in CLIENTS:   # staff see only the clients they are granted
            self.cli_in_process("acl", "grant", f"/{name}", "--user", "staff",
                                "--rights", "read,write,delete,manage")

    def set_options(self, section: str, **values) -> None:
        """Change options in the data dir's strongroom.toml (takes effect at the next start)."""
        conf = self.data_dir / "strongroom.toml"
        lines, current = conf.read_text("utf-8").splitlines(), None
        for i, line in enumerate(lines):
            if line.startswith("["):
                current = line.strip("[] ")
            elif current == section and "=" in line:     # set, or commented out
                name = line.removeprefix("# ").split("=", 1)[0].strip()
                if name in values:
                    v = values.pop(name)
                    lines[i] = f"{name} = " + (str(v).lower() if isinstance(v, bool) else
                                                repr(v) if isinstance(v, (int, float))
                                                else f'"{v}"')
        assert not values, f"no such options in [{section}]: {values}"
        conf.write_text("\n".join(lines) + "\n", "utf-8")

    def add_user(self, login: str, client: str | None = "acme", *, totp: bool = True) -> User:
        """Provision a user with the CLI (TOTP enrolled unless totp=False) and remember it."""
        import json
        password = f"E2e-pass-{os.urandom(8).hex()}"
        where = ("--client", client) if client else ("--staff",)
        out = self.cli_in_process("user", "add", login, *where, "--password-stdin", "--json",
                                  *(() if totp else ("--no-totp",)), input=password + "\n")
        user = User(login, password, client, json.loads(out).get("totp_secret"))
        self.users[login] = user
        self._rclone_conf = None
        return user

    def start(self, nofile: int | None = None) -> None:
        """Start `strongroom serve`; return once both ports accept connections.

        `nofile`: the daemon's RLIMIT_NOFILE (default: inherited)."""
        assert not self.running, "daemon already running"
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [*self.run_as, "strongroom", "serve", "--data-dir", str(self.data_dir)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                preexec_fn=_daemon_preexec(nofile))
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"daemon exited with {self.proc.returncode} while starting:\n"
                            f"{self.log_since_start()}")
            if "serving WebDAV" in self.log_since_start() and self._ports_open():
                return
            time.sleep(0.05)
        self.proc.kill()
        self.proc.wait(STOP_TIMEOUT)
        pytest.fail(f"daemon did not listen within {START_TIMEOUT} s:\n{self.log_since_start()}")

    def _ports_open(self) -> bool:
        for port in (self.webdav_port, self.sftp_port):
            try:
                socket.create_connection((HOST, port), timeout=1).close()
            except OSError:
                return False
        return True

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self, sig: int = signal.SIGKILL, timeout: float = STOP_TIMEOUT) -> int:
        """Send `sig` and wait for the exit; return the exit status.

        A daemon still alive after `timeout` is SIGKILLed and the test fails.
        """
        assert self.proc is not None, "daemon was never started"
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(STOP_TIMEOUT)
            pytest.fail(f"daemon did not exit within {timeout} s of signal {sig}:\n"
                        f"{self.log_since_start()[-4000:]}")

    def stop(self) -> int:
        return self.kill(signal.SIGTERM)

    def restart(self) -> None:
        if self.running:
            self.stop()
        self.start()

    def ensure_running(self) -> None:
        if not self.running:
            self.start()

    def log_text(self) -> str:
        return self.log_path.read_text("utf-8", "replace") if self.log_path.exists() else ""

    def log_since_start(self) -> str:
        return self.log_text()[self._log_offset:] if self._log_offset else self.log_text()

    # -- clients --------------------------------------------------------------------

    def path(self, name: str) -> Path:
        """A fresh path under the work directory (unique per call)."""
        return self.work / f"{next(self._seq):04d}-{name}"

    def _sftp_argv(self, user: User, batch_lines, options=()) -> tuple[list, dict]:
        need("sshpass", "sftp")
        batch = self.root / f"batch-{next(self._seq):04d}.txt"
        batch.write_text("".join(line + "\n" for line in batch_lines), "utf-8")
        argv = ["sshpass", "-e", "sftp", "-F", "/dev/null", "-oBatchMode=no",
                "-oStrictHostKeyChecking=no", "-oUserKnownHostsFile=/dev/null",
                "-oLogLevel=ERROR", "-oPubkeyAuthentication=no",
                "-oPreferredAuthentications=password,keyboard-interactive",
                "-oConnectTimeout=10", *options, "-P", str(self.sftp_port),
                "-b", str(batch), f"{user.login}@{HOST}"]
        env = dict(os.environ, SSHPASS=user.password, LC_ALL="C.UTF-8")
        return argv, env

    def run_sftp(self, user, batch_lines, *, options=(),
                 timeout: float = TIMEOUT) -> subprocess.CompletedProcess:
        """Run OpenSSH sftp in batch mode as `user` (a login or a User), cwd = work dir.

        Batch mode stops at the first failing command and exits non-zero.
        """
        argv, env = self._sftp_argv(self._user(user), batch_lines, options)
        return subprocess.run(argv, env=env, cwd=self.work, capture_output=True,
                              stdin=subprocess.DEVNULL, timeout=timeout)

    def sftp_background(self, user, batch_lines, *, options=()) -> subprocess.Popen:
        """Like run_sftp, but started in the background; the caller must wait for it.

        It runs in its own process group (sshpass, sftp, ssh): `os.killpg(p.pid, sig)`
        drops the connection the way a crashing client would.
        """
        argv, env = self._sftp_argv(self._user(user), batch_lines, options)
        return subprocess.Popen(argv, env=env, cwd=self.work, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True)

    def rclone(self, user, *args, timeout: float = TIMEOUT) -> subprocess.CompletedProcess:
        """Run rclone with remotes named after each login ('alice:path'), output as text."""
        need("rclone")
        proc = subprocess.run(
            ["rclone", "--config", str(self._rclone_config()), "--no-check-certificate",
             "--retries", "1", "--low-level-retries", "1", "--contimeout", "10s",
             "--timeout", "60s", *map(str, args)],
            cwd=self.work, capture_output=True, stdin=subprocess.DEVNULL, timeout=timeout)
        proc.stdout, proc.stderr = (proc.stdout.decode("utf-8", "replace"),
                                    proc.stderr.decode("utf-8", "replace"))
        return proc

    def remote(self, user, path: str = "") -> str:
        return f"{self._user(user).login}:{path.lstrip('/')}"

    def _rclone_config(self) -> Path:
        if self._rclone_conf is None:
            lines = []
            for u in self.users.values():
                obscured = subprocess.run(["rclone", "obscure", u.password], check=True,
                                          capture_output=True, text=True, timeout=TIMEOUT)
                lines += [f"[{u.login}]", "type = webdav", f"url = {self.base_url}/",
                          "vendor = other", f"user = {u.login}",
                          f"pass = {obscured.stdout.strip()}", ""]
            self._rclone_conf = self.root / "rclone.conf"
            self._rclone_conf.write_text("\n".join(lines))
            self._rclone_conf.chmod(0o600)
        return self._rclone_conf

    def curl(self, user, *args, max_time: float = TIMEOUT - 10) -> subprocess.CompletedProcess:
        """Run curl as `user` (None: no credentials) with TLS verification off; bytes out.

        curl gives up after `max_time` seconds (exit status 28).
        """
        need("curl")
        auth = () if user is None else ("-u", f"{self._user(user).login}:"
                                              f"{self._user(user).password}")
        return subprocess.run(["curl", "-sS", "-k", "--max-time", str(max_time), *auth,
                               *map(str, args)],
                              cwd=self.work, capture_output=True, stdin=subprocess.DEVNULL,
                              timeout=max_time + 10)

    def curl_background(self, user, *args) -> subprocess.Popen:
        """Like curl, but started in the background (own process group, as sftp_background)."""
        need("curl")
        u = self._user(user)
        return subprocess.Popen(["curl", "-sS", "-k", "--max-time", str(TIMEOUT), "-u",
                                 f"{u.login}:{u.password}", *map(str, args)],
                                cwd=self.work, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True)

    def url(self, path: str, *, raw: bool = False) -> str:
        """The HTTPS URL of a tree path; `raw` sends `path` exactly as given."""
        return self.base_url + (path if raw else quote(path, safe="/"))

    def request(self, user, method: str, path: str, *args, raw: bool = False,
                max_time: float = TIMEOUT - 10) -> Response:
        """One HTTP request with curl; `raw` also stops curl from resolving '..'."""
        out = self.path("body")
        proc = self.curl(user, "-X", method, "-o", out, "-w", "%{http_code}",
                         *(("--path-as-is",) if raw else ()), *args, self.url(path, raw=raw),
                         max_time=max_time)
        body = out.read_bytes() if out.exists() else b""
        out.unlink(missing_ok=True)
        status = proc.stdout.decode().strip()
        return Response(proc.returncode, int(status) if status.isdigit() else 0, body,
                        proc.stderr.decode("utf-8", "replace"))

    def _user(self, user) -> User:
        return user if isinstance(user, User) else self.users[user]


def running_daemon(tmp_path_factory, name: str = "e2e", options=None, setup=None,
                   nofile: int | None = None, database_url: str | None = None):
    """Generator for module fixtures: a provisioned daemon with `options`
    ({section: {option: value}}) in its config, `setup(daemon)` run once it listens,
    RLIMIT_NOFILE `nofile` if given, and its metadata in `database_url` if given."""
    need("strongroom")
    d = Daemon(tmp_path_factory.mktemp(name))
    d.provision(database_url)
    for section, values in (options or {}).items():
        d.set_options(section, **values)
    d.start(nofile)
    if setup is not None:
        setup(d)
    yield d
    if d.running:
        d.stop()


def running_on(database: str, tmp_path_factory, name: str = "e2e", **kwargs):
    """`running_daemon` on `database`: "sqlite" (the data directory's file) or
    "postgresql" (a throwaway database; skipped without STRONGROOM_TEST_PG_URL), for
    module fixtures parametrized over both."""
    if database == "sqlite":
        yield from running_daemon(tmp_path_factory, f"{name}-sqlite", **kwargs)
        return
    from tests.support import postgres
    with postgres.fresh_database() as url:
        yield from running_daemon(tmp_path_factory, f"{name}-pg", database_url=url, **kwargs)


def one_line(proc) -> str:
    """The single error line of a failed command (asserting it is single, with no
    traceback, in the CLI's form)."""
    assert proc.returncode != 0, proc
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("strongroom: error: "), lines[0]
    return lines[0]
